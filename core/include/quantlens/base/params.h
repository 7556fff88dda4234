#pragma once

// Typed method parameters: what a method declares, and the checks every value passes before
// the method sees it. Views build their forms from the same declarations.

#include "quantlens/base/expected.h"

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace ql {

/// A method parameter's value: flag, integer, real or text.
using ParamValue = std::variant<bool, int64_t, double, std::string>;
/// Method parameters by name.
using ParamMap = std::map<std::string, ParamValue>;

/// The declaration of one method parameter.
struct ParamSpec {
    enum class Type { Bool, Int, Double, Choice };
    std::string name;
    Type type = Type::Double;
    ParamValue defaultValue;          ///< of the matching alternative (bool, int64_t, double, string)
    double min = 0, max = -1;         ///< inclusive range for Int and Double; none while min > max (the default)
    std::vector<std::string> choices; ///< allowed values of a Choice
    std::string help;                 ///< one sentence for forms and `plugins --json`
};

/// The given parameters checked against the declarations, with defaults filled in. Errors name
/// the method and the parameter: unknown names (listing the known ones), wrong types, values
/// out of range. An integer is accepted where a real is declared.
Expected<ParamMap> completeParams(const std::vector<ParamSpec>& specs, const ParamMap& given,
                                  const std::string& method);

/// Typed access to a completed map (the value must exist with that type).
bool paramBool(const ParamMap& p, const std::string& name);
/// Integer parameter of a completed map.
int64_t paramInt(const ParamMap& p, const std::string& name);
/// Real parameter of a completed map (an integer value is converted).
double paramDouble(const ParamMap& p, const std::string& name);
/// Text or choice parameter of a completed map.
const std::string& paramString(const ParamMap& p, const std::string& name);

/// "bool", "int", "double" or "choice".
const char* paramTypeName(ParamSpec::Type t);
/// A value as text, e.g. "0.01", "true", "magnitude".
std::string paramValueText(const ParamValue& v);

} // namespace ql

#include "quantlens/base/params.h"

#include <cmath>
#include <sstream>

namespace ql {

const char* paramTypeName(ParamSpec::Type t)
{
    switch (t) {
    case ParamSpec::Type::Bool: return "bool";
    case ParamSpec::Type::Int: return "int";
    case ParamSpec::Type::Double: return "double";
    case ParamSpec::Type::Choice: return "choice";
    }
    return "?";
}

std::string paramValueText(const ParamValue& v)
{
    if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
    if (const int64_t* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    if (const double* d = std::get_if<double>(&v)) {
        std::ostringstream s;
        s << *d;
        return s.str();
    }
    return std::get<std::string>(v);
}

Expected<ParamMap> completeParams(const std::vector<ParamSpec>& specs, const ParamMap& given, const std::string& method)
{
    ParamMap out;
    for (const auto& entry : given) {
        const std::string& name = entry.first;
        const ParamValue& value = entry.second; // a reference, not a binding: lambdas below capture it
        const ParamSpec* spec = nullptr;
        for (const auto& s : specs)
            if (s.name == name) spec = &s;
        const std::string where = method + ": parameter \"" + name + "\"";
        if (!spec) {
            std::string known;
            for (const auto& s : specs) known += (known.empty() ? "" : ", ") + s.name;
            return makeError(where + " is unknown (known: " + (known.empty() ? "none" : known) + ")");
        }
        const bool ranged = spec->min <= spec->max;
        auto rangeError = [&](double v) -> Expected<void> {
            if (ranged && (v < spec->min || v > spec->max || !std::isfinite(v)))
                return makeError(where + " must be in [" + paramValueText(spec->min) + ", " +
                                 paramValueText(spec->max) + "], got " + paramValueText(value));
            return {};
        };
        switch (spec->type) {
        case ParamSpec::Type::Bool:
            if (!std::holds_alternative<bool>(value))
                return makeError(where + " expects true or false, got " + paramValueText(value));
            out[name] = value;
            break;
        case ParamSpec::Type::Int:
            if (!std::holds_alternative<int64_t>(value))
                return makeError(where + " expects an integer, got " + paramValueText(value));
            QL_TRY(rangeError(double(std::get<int64_t>(value))));
            out[name] = value;
            break;
        case ParamSpec::Type::Double: {
            double v;
            if (const double* d = std::get_if<double>(&value))
                v = *d;
            else if (const int64_t* i = std::get_if<int64_t>(&value))
                v = double(*i);
            else
                return makeError(where + " expects a number, got " + paramValueText(value));
            QL_TRY(rangeError(v));
            out[name] = v;
            break;
        }
        case ParamSpec::Type::Choice: {
            const std::string* s = std::get_if<std::string>(&value);
            bool ok = false;
            std::string list;
            for (const auto& c : spec->choices) {
                ok = ok || (s && *s == c);
                list += (list.empty() ? "" : ", ") + c;
            }
            if (!ok) return makeError(where + " must be one of " + list + ", got " + paramValueText(value));
            out[name] = value;
            break;
        }
        }
    }
    for (const auto& s : specs)
        if (!out.count(s.name)) out[s.name] = s.defaultValue;
    return out;
}

bool paramBool(const ParamMap& p, const std::string& name)
{
    return std::get<bool>(p.at(name));
}

int64_t paramInt(const ParamMap& p, const std::string& name)
{
    return std::get<int64_t>(p.at(name));
}

double paramDouble(const ParamMap& p, const std::string& name)
{
    const ParamValue& v = p.at(name);
    if (const int64_t* i = std::get_if<int64_t>(&v)) return double(*i);
    return std::get<double>(v);
}

const std::string& paramString(const ParamMap& p, const std::string& name)
{
    return std::get<std::string>(p.at(name));
}

} // namespace ql

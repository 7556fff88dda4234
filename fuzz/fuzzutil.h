#pragma once

// Shared helpers of the libFuzzer targets: inputs reach file-based readers through a scratch
// folder, and the targets that need a model use the same small deterministic fixture model.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ql {
class Model;
class Tokenizer;
} // namespace ql

namespace qlfuzz {

/// A per-process scratch folder (created on first use under $TMPDIR or /tmp).
const std::string& scratchDir();
/// Writes the fuzz input to scratchDir()/name and returns the path.
std::string writeInput(const std::string& name, const uint8_t* data, size_t size);
/// Writes the fixture model (config.json, model.safetensors) into dir; aborts on I/O failure.
void writeFixtureModel(const std::string& dir);
/// The fixture model's folder under scratchDir(), written on first use.
const std::string& fixtureModelDir();
/// The fixture model, opened once; aborts when it cannot be.
const ql::Model& fixtureModel();
/// Encodes sampleText(), decodes the ids and looks up a few tokens: what every loaded tokenizer must survive.
void exercise(const ql::Tokenizer& tokenizer);
/// A short text with ASCII, UTF-8, digits and whitespace runs, for tokenizers that loaded.
std::string_view sampleText();

} // namespace qlfuzz

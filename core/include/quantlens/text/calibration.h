#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/text/tokenizer.h"

#include <cstdint>
#include <string>
#include <vector>

#include <optional>
#include <string_view>

namespace ql {

/// How calibration windows are drawn from the tokenized text.
enum class Sampling {
    Contiguous, ///< window i covers tokens [i·L, (i+1)·L)
    Random,     ///< GPTQ-style: each window starts at a seeded uniform position in [0, n - L]
};

/// "contiguous" or "random".
const char* samplingName(Sampling s);
/// The sampling a name spells ("contiguous", "random"); nullopt for anything else.
std::optional<Sampling> parseSampling(std::string_view name);

/// What to draw: number of windows, their length, the sampling and its seed.
struct CalibrationSpec {
    int samples = 128;
    int seqlen = 512;
    Sampling sampling = Sampling::Contiguous;
    uint64_t seed = 0;
    int heldOut = 0; ///< windows of seqlen kept apart at the end of the text (end-to-end measures)
};

/// Token windows for calibration, with the hash that identifies them wherever results are stored.
struct CalibrationSet {
    CalibrationSpec spec;
    std::vector<std::vector<int32_t>> windows;
    int64_t sourceTokens = 0; ///< tokens in the whole tokenized text
    std::string sha256;       ///< of the windows' token ids (little-endian int32, in order)
    /// The last spec.heldOut windows of the text, never overlapping a calibration window.
    std::vector<std::vector<int32_t>> heldOutWindows;
    std::string heldOutSha256; ///< of the held-out windows, hashed like sha256
    std::string textSha256;    ///< of the calibration text's bytes: the text's identity, whatever its file name
};

/// Reads calibration text: a plain text file as is, or a .jsonl file whose lines are objects
/// with a "text" field (joined with blank lines). Errors name the file and line.
Expected<std::string> readCalibrationText(const std::string& path);
/// Refuses what is not UTF-8 text (a NUL byte, an invalid sequence), naming path and the byte
/// offset: a model or archive passed as text would otherwise be tokenized into noise.
Expected<void> checkText(std::string_view text, const std::string& path);

/// Tokenizes text (no special tokens) and cuts it into windows; errors when the text is too
/// short for the request or the spec is invalid.
Expected<CalibrationSet> makeCalibrationSet(const std::string& text, const Tokenizer& tokenizer,
                                            const CalibrationSpec& spec);

/// Hex SHA-256 of a byte range.
std::string sha256Hex(const void* data, size_t size);
/// Hex SHA-256 of the concatenation of files (e.g. a model's weight shards, in order).
Expected<std::string> sha256OfFiles(const std::vector<std::string>& paths);

} // namespace ql

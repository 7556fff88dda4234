#include "clicommon.h"
#include "quantlens/base/atomicfile.h"

#include "quantlens/export/ggufimport.h"
#include "quantlens/export/openedmodel.h"

#include "quantlens/text/tokenizer.h"

#include <cstdio>
#include <iostream>

namespace ql::cli {

int cmdTokenize(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption(
        {QStringLiteral("text"), QStringLiteral("Text file to tokenize (read as bytes)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Write ids here instead of stdout."), QStringLiteral("FILE")});
    if (!parseArgs(p, args, 1, "quantlens-cli tokenize MODEL_DIR|MODEL.gguf --text FILE [--out FILE]")) return 1;
    if (!p.isSet(QStringLiteral("text"))) return fail("tokenize needs --text FILE");
    const std::string dir = p.positionalArguments()[0].toStdString();
    Expected<std::shared_ptr<Tokenizer>> tok = makeError("");
    if (OpenedModel::isGgufPath(dir)) {
        auto g = GgufFile::open(dir);
        if (!g) return fail(g.message());
        tok = ggufTokenizer(*g);
    } else {
        tok = loadTokenizer(dir);
    }
    if (!tok) return fail(tok.message());
    auto text = readFile(p.value(QStringLiteral("text")).toStdString());
    if (!text) return fail(text.message());
    const auto ids = (*tok)->encode(*text);
    std::string out;
    out.reserve(ids.size() * 5);
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i) out += ' ';
        out += std::to_string(ids[i]);
    }
    out += '\n';
    if (p.isSet(QStringLiteral("out"))) {
        const std::string path = p.value(QStringLiteral("out")).toStdString();
        if (auto w = writeFileAtomically(path, out); !w) return fail(w.message());
        std::cerr << ids.size() << " tokens written to " << path << "\n";
    } else {
        std::cout << out;
    }
    return 0;
}

} // namespace ql::cli

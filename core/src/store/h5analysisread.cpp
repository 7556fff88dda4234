// Reads an AnalysisResult in the layout of docs/analysis-file.md, tolerating files made by hand
// (missing groups are empty; missing order datasets fall back to the group listing).
#include "store/h5analysis.h"

#include <algorithm>
#include <charconv>
#include <system_error>

// Assigns the value of an Expected expression to lhs, or returns its error.
#define QL_ASSIGN(lhs, expr)                                                                                           \
    do {                                                                                                               \
        auto ql_assign_result_ = (expr);                                                                               \
        if (!ql_assign_result_) return ql_assign_result_.error();                                                      \
        lhs = std::move(*ql_assign_result_);                                                                           \
    } while (0)

namespace ql::detail {

namespace {

Eigen::VectorXf toEigen(const std::vector<float>& v)
{
    return Eigen::Map<const Eigen::VectorXf>(v.data(), Eigen::Index(v.size()));
}

} // namespace

Expected<AnalysisMeta> readAnalysisMeta(hid_t file)
{
    const std::string r = "/";
    if (!hasAttr(file, "schema_version"))
        return makeError("not a QuantLens analysis file (no schema_version attribute)");
    AnalysisMeta m;
    QL_ASSIGN(m.schemaVersion, readAttr<int32_t>(file, r, "schema_version"));
    if (m.schemaVersion > kSchemaVersion)
        return makeError("schema_version " + std::to_string(m.schemaVersion) + " is newer than this QuantLens reads (" +
                         std::to_string(kSchemaVersion) + "); open it with a newer QuantLens");
    if (m.schemaVersion < 1) return makeError("invalid schema_version " + std::to_string(m.schemaVersion));
    QL_ASSIGN(m.quantlensVersion, readAttrString(file, r, "quantlens_version"));
    QL_ASSIGN(m.modelDir, readAttrString(file, r, "model_dir"));
    QL_ASSIGN(m.modelSha256, readAttrString(file, r, "model_sha256"));
    QL_ASSIGN(m.calibSha256, readAttrString(file, r, "calib_sha256"));
    QL_ASSIGN(m.samples, readAttr<int32_t>(file, r, "samples"));
    QL_ASSIGN(m.seqlen, readAttr<int32_t>(file, r, "seqlen"));
    QL_ASSIGN(m.sampling, readAttrString(file, r, "sampling"));
    QL_ASSIGN(m.seed, readAttr<uint64_t>(file, r, "seed"));
    return m;
}

namespace {

Expected<SiteStats> readSite(hid_t sites, const std::string& name)
{
    auto g = openGroup(sites, "/sites", name);
    if (!g) return g.error();
    const hid_t id = g->get();
    const std::string w = "/sites/" + name;
    SiteStats s;
    s.name = name;
    for (const auto& [ds, member] : kChannelStats) {
        auto v = readArray<float>(id, w, ds, 1);
        if (!v) return v.error();
        s.*member = toEigen(*v);
    }
    if (hasLink(id, "mean_abs")) { // absent from stores written before it was kept
        auto v = readArray<float>(id, w, "mean_abs", 1);
        if (!v) return v.error();
        s.meanAbs = toEigen(*v);
    }
    QL_ASSIGN(s.tokenAbsmax, readArray<float>(id, w, "token_absmax", 1));
    QL_ASSIGN(s.histCounts, readArray<double>(id, w, "hist_counts", 1));
    QL_ASSIGN(s.histEdges, readArray<float>(id, w, "hist_edges", 1));
    QL_ASSIGN(s.outlierChannels, readArray<int32_t>(id, w, "outlier_channels", 1));
    if (hasLink(id, "hessian")) {
        std::vector<hsize_t> dims;
        auto h = readArray<float>(id, w, "hessian", 2, &dims);
        if (!h) return h.error();
        s.hessian = Eigen::Map<const RowMajorF>(h->data(), Eigen::Index(dims[0]), Eigen::Index(dims[1])).cast<double>();
    }
    QL_ASSIGN(s.energyEntropyBits, readAttr<double>(id, w, "energy_entropy_bits"));
    QL_ASSIGN(s.valueEntropyBits, readAttr<double>(id, w, "value_entropy_bits"));
    QL_ASSIGN(s.kurtosisSite, readAttr<double>(id, w, "kurtosis"));
    QL_ASSIGN(s.absmaxSite, readAttr<double>(id, w, "absmax"));
    QL_ASSIGN(s.nTokens, readAttr<int64_t>(id, w, "n_tokens"));
    QL_ASSIGN(s.layer, readAttr<int32_t>(id, w, "layer"));
    QL_ASSIGN(s.outlierThreshold, readAttr<double>(id, w, "outlier_threshold"));
    return s;
}

Expected<WeightStats> readWeights(hid_t weights, const std::string& name)
{
    auto g = openGroup(weights, "/weights", name);
    if (!g) return g.error();
    const std::string w = "/weights/" + name;
    WeightStats ws;
    ws.name = name;
    auto absmax = readArray<float>(g->get(), w, "row_absmax", 1);
    if (!absmax) return absmax.error();
    auto stdev = readArray<float>(g->get(), w, "row_std", 1);
    if (!stdev) return stdev.error();
    ws.rowAbsmax = toEigen(*absmax);
    ws.rowStd = toEigen(*stdev);
    // The histogram arrived after the first files were written: absent means empty.
    if (hasLink(g->get(), "hist_counts")) QL_ASSIGN(ws.histCounts, readArray<double>(g->get(), w, "hist_counts", 1));
    if (hasLink(g->get(), "hist_edges")) QL_ASSIGN(ws.histEdges, readArray<float>(g->get(), w, "hist_edges", 1));
    if ((!ws.histCounts.empty() || !ws.histEdges.empty()) && ws.histEdges.size() != ws.histCounts.size() + 1)
        return makeError(w + ": hist_edges has " + std::to_string(ws.histEdges.size()) +
                         " values, expected one more than the " + std::to_string(ws.histCounts.size()) +
                         " of hist_counts");
    QL_ASSIGN(ws.kurtosis, readAttr<double>(g->get(), w, "kurtosis"));
    QL_ASSIGN(ws.fracBeyond3Sigma, readAttr<double>(g->get(), w, "frac_beyond_3sigma"));
    return ws;
}

Expected<LayerSensitivity> readSensitivity(hid_t sens, const std::string& name)
{
    auto g = openGroup(sens, "/sensitivity", name);
    if (!g) return g.error();
    const hid_t id = g->get();
    const std::string w = "/sensitivity/" + name;
    LayerSensitivity ls;
    ls.name = name;
    QL_ASSIGN(ls.bits, readArray<int32_t>(id, w, "bits", 1));
    QL_ASSIGN(ls.proxy, readArray<double>(id, w, "proxy", 1));
    QL_ASSIGN(ls.relMse, readArray<double>(id, w, "rel_mse", 1));
    QL_ASSIGN(ls.sqnrDb, readArray<double>(id, w, "sqnr_db", 1));
    if (hasLink(id, "methods")) QL_ASSIGN(ls.methods, readStrings(id, w, "methods"));
    if (hasLink(id, "groups")) QL_ASSIGN(ls.groups, readArray<int32_t>(id, w, "groups", 1));
    if (hasLink(id, "weight_sq")) QL_ASSIGN(ls.weightSq, readArray<double>(id, w, "weight_sq", 1));
    if (hasLink(id, "kl")) QL_ASSIGN(ls.kl, readArray<double>(id, w, "kl", 1));
    if (hasLink(id, "fisher")) QL_ASSIGN(ls.fisher, readArray<double>(id, w, "fisher", 1));
    if (hasLink(id, "fisher_out")) QL_ASSIGN(ls.fisherOut, readArray<double>(id, w, "fisher_out", 1));
    const size_t n = ls.bits.size();
    auto fits = [n](size_t m, bool optional) { return m == n || (optional && m == 0); };
    if (!fits(ls.proxy.size(), false) || !fits(ls.relMse.size(), false) || !fits(ls.sqnrDb.size(), false) ||
        !fits(ls.methods.size(), true) || !fits(ls.groups.size(), true) || !fits(ls.weightSq.size(), true) ||
        !fits(ls.kl.size(), true) || !fits(ls.fisher.size(), true) || !fits(ls.fisherOut.size(), true))
        return makeError(w + ": its arrays are not all as long as bits (" + std::to_string(n) + ")");
    return ls;
}

// Reads the items of a named group in the order of its order dataset; files without one (made
// by hand) fall back to the group's own listing.
template <class T, class ReadOne>
Expected<std::vector<T>> readNamed(hid_t file, const char* group, const char* orderName, ReadOne readOne)
{
    std::vector<T> out;
    if (!hasLink(file, group)) return out;
    auto g = openGroup(file, "", group);
    if (!g) return g.error();
    auto names = hasLink(file, orderName) ? readStrings(file, "", orderName)
                                          : listMembers(g->get(), joinPath("", group));
    if (!names) return names.error();
    for (const auto& name : *names) {
        auto item = readOne(g->get(), name);
        if (!item) return item.error();
        out.push_back(std::move(*item));
    }
    return out;
}

Expected<std::vector<ResidualStats>> readResiduals(hid_t file)
{
    std::vector<ResidualStats> out;
    if (!hasLink(file, "residual")) return out;
    auto top = openGroup(file, "", "residual");
    if (!top) return top.error();
    auto names = listMembers(top->get(), "/residual");
    if (!names) return names.error();
    for (const auto& name : *names) {
        ResidualStats r;
        const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), r.layer);
        if (ec != std::errc() || end != name.data() + name.size())
            return makeError("/residual/" + name + ": group name is not a layer number");
        auto g = openGroup(top->get(), "/residual", name);
        if (!g) return g.error();
        auto absmax = readArray<float>(g->get(), "/residual/" + name, "absmax", 1);
        if (!absmax) return absmax.error();
        r.absmax = toEigen(*absmax);
        QL_ASSIGN(r.tokenAbsmax, readArray<float>(g->get(), "/residual/" + name, "token_absmax", 1));
        // top3 and median_abs arrived after the first files were written: absent means zero.
        if (hasLink(g->get(), "top3")) {
            std::vector<float> top;
            QL_ASSIGN(top, readArray<float>(g->get(), "/residual/" + name, "top3", 1));
            if (top.size() != r.top3.size())
                return makeError("/residual/" + name + "/top3: expected 3 values, found " + std::to_string(top.size()));
            std::copy(top.begin(), top.end(), r.top3.begin());
        }
        if (hasAttr(g->get(), "median_abs"))
            QL_ASSIGN(r.medianAbs, readAttr<float>(g->get(), "/residual/" + name, "median_abs"));
        out.push_back(std::move(r));
    }
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.layer < b.layer; });
    return out;
}

Expected<std::vector<MassiveActivation>> readMassive(hid_t file)
{
    std::vector<MassiveActivation> out;
    if (!hasLink(file, "massive")) return out;
    auto g = openGroup(file, "", "massive");
    if (!g) return g.error();
    const hid_t id = g->get();
    std::vector<int32_t> layer, tokenId, channel;
    std::vector<int64_t> token;
    std::vector<float> value;
    QL_ASSIGN(layer, readArray<int32_t>(id, "/massive", "layer", 1));
    QL_ASSIGN(token, readArray<int64_t>(id, "/massive", "token", 1));
    QL_ASSIGN(tokenId, readArray<int32_t>(id, "/massive", "token_id", 1));
    QL_ASSIGN(channel, readArray<int32_t>(id, "/massive", "channel", 1));
    QL_ASSIGN(value, readArray<float>(id, "/massive", "value", 1));
    const size_t n = layer.size();
    if (token.size() != n || tokenId.size() != n || channel.size() != n || value.size() != n)
        return makeError("/massive: layer, token, token_id, channel and value differ in length");
    out.resize(n);
    for (size_t i = 0; i < n; ++i) out[i] = {layer[i], token[i], tokenId[i], channel[i], value[i]};
    return out;
}

Expected<EndToEndSummary> readEndToEnd(hid_t file)
{
    EndToEndSummary e;
    if (!hasLink(file, "end_to_end")) return e;
    auto g = openGroup(file, "", "end_to_end");
    if (!g) return g.error();
    const hid_t id = g->get();
    const std::string w = "/end_to_end";
    QL_ASSIGN(e.windows, readAttr<int32_t>(id, w, "windows"));
    QL_ASSIGN(e.seqlen, readAttr<int32_t>(id, w, "seqlen"));
    QL_ASSIGN(e.tokens, readAttr<int64_t>(id, w, "tokens"));
    QL_ASSIGN(e.heldOutSha256, readAttrString(id, w, "held_out_sha256"));
    QL_ASSIGN(e.bits, readArray<int32_t>(id, w, "bits", 1));
    QL_ASSIGN(e.spearmanProxyKl, readArray<double>(id, w, "spearman_proxy_kl", 1));
    QL_ASSIGN(e.spearmanRelMseKl, readArray<double>(id, w, "spearman_rel_mse_kl", 1));
    if (hasLink(id, "options")) QL_ASSIGN(e.options, readStrings(id, w, "options"));
    if (hasAttr(id, "context")) {
        QL_ASSIGN(e.context, readAttrString(id, w, "context"));
        QL_ASSIGN(e.contextKl, readAttr<double>(id, w, "context_kl"));
    }
    if (hasLink(id, "spearman_hawq_kl")) QL_ASSIGN(e.spearmanHawqKl, readArray<double>(id, w, "spearman_hawq_kl", 1));
    if (hasLink(id, "spearman_fisher_kl"))
        QL_ASSIGN(e.spearmanFisherKl, readArray<double>(id, w, "spearman_fisher_kl", 1));
    if (hasLink(id, "spearman_fisher_out_kl"))
        QL_ASSIGN(e.spearmanFisherOutKl, readArray<double>(id, w, "spearman_fisher_out_kl", 1));
    if (e.spearmanProxyKl.size() != e.bits.size() || e.spearmanRelMseKl.size() != e.bits.size() ||
        (!e.options.empty() && e.options.size() != e.bits.size()) ||
        (!e.spearmanHawqKl.empty() && e.spearmanHawqKl.size() != e.bits.size()) ||
        (!e.spearmanFisherKl.empty() && e.spearmanFisherKl.size() != e.bits.size()) ||
        (!e.spearmanFisherOutKl.empty() && e.spearmanFisherOutKl.size() != e.bits.size()))
        return makeError(w + ": bits, options and the spearman_* arrays differ in length");
    return e;
}

} // namespace

Expected<AnalysisResult> readAnalysis(hid_t file)
{
    AnalysisResult r;
    QL_ASSIGN(r.meta, readAnalysisMeta(file));
    QL_ASSIGN(r.sites, readNamed<SiteStats>(file, "sites", "site_order", readSite));
    QL_ASSIGN(r.residuals, readResiduals(file));
    QL_ASSIGN(r.massive, readMassive(file));
    QL_ASSIGN(r.weights, readNamed<WeightStats>(file, "weights", "weight_order", readWeights));
    QL_ASSIGN(r.sensitivity, readNamed<LayerSensitivity>(file, "sensitivity", "sensitivity_order", readSensitivity));
    QL_ASSIGN(r.endToEnd, readEndToEnd(file));
    return r;
}

} // namespace ql::detail

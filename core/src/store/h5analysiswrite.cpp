// Writes an AnalysisResult in the layout of docs/analysis-file.md.
#include "store/h5analysis.h"

namespace ql::detail {

namespace {

// Names become HDF5 link names verbatim, so a '/' would silently create nested groups.
Expected<void> checkName(const std::string& where, const std::string& name)
{
    if (name.empty() || name == "." || name.find('/') != std::string::npos)
        return makeError(where + ": name \"" + name + "\" cannot be stored (empty, \".\" or contains '/')");
    return {};
}

Expected<void> writeEigen(hid_t loc, const std::string& where, const char* name, const Eigen::VectorXf& v)
{
    return writeVector(loc, where, name, v.data(), size_t(v.size()));
}

Expected<void> writeMeta(hid_t file, const AnalysisMeta& m)
{
    const std::string r = "/";
    QL_TRY(writeAttr<int32_t>(file, r, "schema_version", kSchemaVersion));
    QL_TRY(writeAttr(file, r, "quantlens_version",
                     m.quantlensVersion.empty() ? std::string(QL_VERSION) : m.quantlensVersion));
    QL_TRY(writeAttr(file, r, "model_dir", m.modelDir));
    QL_TRY(writeAttr(file, r, "model_sha256", m.modelSha256));
    QL_TRY(writeAttr(file, r, "calib_sha256", m.calibSha256));
    QL_TRY(writeAttr<int32_t>(file, r, "samples", m.samples));
    QL_TRY(writeAttr<int32_t>(file, r, "seqlen", m.seqlen));
    QL_TRY(writeAttr(file, r, "sampling", m.sampling));
    QL_TRY(writeAttr<uint64_t>(file, r, "seed", m.seed));
    return {};
}

Expected<void> writeSite(hid_t sites, const SiteStats& s)
{
    QL_TRY(checkName("/sites", s.name));
    auto g = createGroup(sites, "/sites", s.name);
    if (!g) return g.error();
    const hid_t id = g->get();
    const std::string w = "/sites/" + s.name;
    for (const auto& [name, member] : kChannelStats) QL_TRY(writeEigen(id, w, name, s.*member));
    if (s.meanAbs.size()) QL_TRY(writeEigen(id, w, "mean_abs", s.meanAbs));
    QL_TRY(writeVector(id, w, "token_absmax", s.tokenAbsmax.data(), s.tokenAbsmax.size()));
    QL_TRY(writeVector(id, w, "hist_counts", s.histCounts.data(), s.histCounts.size()));
    QL_TRY(writeVector(id, w, "hist_edges", s.histEdges.data(), s.histEdges.size()));
    QL_TRY(writeVector(id, w, "outlier_channels", s.outlierChannels.data(), s.outlierChannels.size()));
    if (s.hessian.size() > 0) {
        // float32 halves the largest part of the file; row-major so h5py sees H[i, j] as stored.
        const RowMajorF h = s.hessian.cast<float>();
        QL_TRY(writeRaw(id, w, "hessian", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, h.data(),
                        {hsize_t(h.rows()), hsize_t(h.cols())}));
    }
    QL_TRY(writeAttr<double>(id, w, "energy_entropy_bits", s.energyEntropyBits));
    QL_TRY(writeAttr<double>(id, w, "value_entropy_bits", s.valueEntropyBits));
    QL_TRY(writeAttr<double>(id, w, "kurtosis", s.kurtosisSite));
    QL_TRY(writeAttr<double>(id, w, "absmax", s.absmaxSite));
    QL_TRY(writeAttr<int64_t>(id, w, "n_tokens", s.nTokens));
    QL_TRY(writeAttr<int32_t>(id, w, "layer", s.layer));
    QL_TRY(writeAttr<double>(id, w, "outlier_threshold", s.outlierThreshold));
    return {};
}

Expected<void> writeResiduals(hid_t file, const std::vector<ResidualStats>& residuals)
{
    auto top = createGroup(file, "", "residual", true);
    if (!top) return top.error();
    for (const auto& r : residuals) {
        const std::string name = std::to_string(r.layer);
        auto g = createGroup(top->get(), "/residual", name);
        if (!g) return g.error();
        QL_TRY(writeEigen(g->get(), "/residual/" + name, "absmax", r.absmax));
        QL_TRY(writeVector(g->get(), "/residual/" + name, "token_absmax", r.tokenAbsmax.data(), r.tokenAbsmax.size()));
        QL_TRY(writeVector(g->get(), "/residual/" + name, "top3", r.top3.data(), r.top3.size()));
        QL_TRY(writeAttr<double>(g->get(), "/residual/" + name, "median_abs", r.medianAbs));
    }
    return {};
}

Expected<void> writeMassive(hid_t file, const std::vector<MassiveActivation>& massive)
{
    auto g = createGroup(file, "", "massive");
    if (!g) return g.error();
    const size_t n = massive.size();
    std::vector<int32_t> layer(n), tokenId(n), channel(n);
    std::vector<int64_t> token(n);
    std::vector<float> value(n);
    for (size_t i = 0; i < n; ++i) {
        layer[i] = massive[i].layer;
        token[i] = massive[i].token;
        tokenId[i] = massive[i].tokenId;
        channel[i] = massive[i].channel;
        value[i] = massive[i].value;
    }
    const hid_t id = g->get();
    QL_TRY(writeVector(id, "/massive", "layer", layer.data(), n));
    QL_TRY(writeVector(id, "/massive", "token", token.data(), n));
    QL_TRY(writeVector(id, "/massive", "token_id", tokenId.data(), n));
    QL_TRY(writeVector(id, "/massive", "channel", channel.data(), n));
    QL_TRY(writeVector(id, "/massive", "value", value.data(), n));
    return {};
}

Expected<void> writeWeights(hid_t weights, const WeightStats& ws)
{
    QL_TRY(checkName("/weights", ws.name));
    auto g = createGroup(weights, "/weights", ws.name);
    if (!g) return g.error();
    const std::string w = "/weights/" + ws.name;
    QL_TRY(writeEigen(g->get(), w, "row_absmax", ws.rowAbsmax));
    QL_TRY(writeEigen(g->get(), w, "row_std", ws.rowStd));
    QL_TRY(writeVector(g->get(), w, "hist_counts", ws.histCounts.data(), ws.histCounts.size()));
    QL_TRY(writeVector(g->get(), w, "hist_edges", ws.histEdges.data(), ws.histEdges.size()));
    QL_TRY(writeAttr<double>(g->get(), w, "kurtosis", ws.kurtosis));
    QL_TRY(writeAttr<double>(g->get(), w, "frac_beyond_3sigma", ws.fracBeyond3Sigma));
    return {};
}

Expected<void> writeSensitivity(hid_t sens, const LayerSensitivity& ls)
{
    QL_TRY(checkName("/sensitivity", ls.name));
    auto g = createGroup(sens, "/sensitivity", ls.name);
    if (!g) return g.error();
    const std::string w = "/sensitivity/" + ls.name;
    const hid_t id = g->get();
    QL_TRY(writeVector(id, w, "bits", ls.bits.data(), ls.bits.size()));
    QL_TRY(writeVector(id, w, "proxy", ls.proxy.data(), ls.proxy.size()));
    QL_TRY(writeVector(id, w, "rel_mse", ls.relMse.data(), ls.relMse.size()));
    QL_TRY(writeVector(id, w, "sqnr_db", ls.sqnrDb.data(), ls.sqnrDb.size()));
    if (!ls.methods.empty()) QL_TRY(writeStrings(id, w, "methods", ls.methods));
    if (!ls.groups.empty()) QL_TRY(writeVector(id, w, "groups", ls.groups.data(), ls.groups.size()));
    if (!ls.weightSq.empty()) QL_TRY(writeVector(id, w, "weight_sq", ls.weightSq.data(), ls.weightSq.size()));
    if (!ls.fisher.empty()) QL_TRY(writeVector(id, w, "fisher", ls.fisher.data(), ls.fisher.size()));
    if (!ls.fisherOut.empty()) QL_TRY(writeVector(id, w, "fisher_out", ls.fisherOut.data(), ls.fisherOut.size()));
    if (!ls.kl.empty()) QL_TRY(writeVector(id, w, "kl", ls.kl.data(), ls.kl.size()));
    return {};
}

Expected<void> writeEndToEnd(hid_t file, const EndToEndSummary& e)
{
    if (e.windows <= 0) return {};
    auto g = createGroup(file, "", "end_to_end");
    if (!g) return g.error();
    const hid_t id = g->get();
    const std::string w = "/end_to_end";
    QL_TRY(writeAttr<int32_t>(id, w, "windows", e.windows));
    QL_TRY(writeAttr<int32_t>(id, w, "seqlen", e.seqlen));
    QL_TRY(writeAttr<int64_t>(id, w, "tokens", e.tokens));
    QL_TRY(writeAttr(id, w, "held_out_sha256", e.heldOutSha256));
    QL_TRY(writeVector(id, w, "bits", e.bits.data(), e.bits.size()));
    QL_TRY(writeVector(id, w, "spearman_proxy_kl", e.spearmanProxyKl.data(), e.spearmanProxyKl.size()));
    QL_TRY(writeVector(id, w, "spearman_rel_mse_kl", e.spearmanRelMseKl.data(), e.spearmanRelMseKl.size()));
    if (!e.options.empty()) QL_TRY(writeStrings(id, w, "options", e.options));
    if (!e.context.empty()) {
        QL_TRY(writeAttr(id, w, "context", e.context));
        QL_TRY(writeAttr<double>(id, w, "context_kl", e.contextKl));
    }
    if (!e.spearmanHawqKl.empty())
        QL_TRY(writeVector(id, w, "spearman_hawq_kl", e.spearmanHawqKl.data(), e.spearmanHawqKl.size()));
    if (!e.spearmanFisherKl.empty())
        QL_TRY(writeVector(id, w, "spearman_fisher_kl", e.spearmanFisherKl.data(), e.spearmanFisherKl.size()));
    if (!e.spearmanFisherOutKl.empty())
        QL_TRY(
            writeVector(id, w, "spearman_fisher_out_kl", e.spearmanFisherOutKl.data(), e.spearmanFisherOutKl.size()));
    return {};
}

// Writes the named items under a fresh group and their names, in order, to a root dataset,
// because HDF5 (and h5py by default) list group members alphabetically.
template <class T, class WriteOne>
Expected<void> writeNamed(hid_t file, const char* group, const char* orderName, const std::vector<T>& items,
                          WriteOne writeOne)
{
    auto g = createGroup(file, "", group, true);
    if (!g) return g.error();
    std::vector<std::string> names;
    for (const auto& item : items) {
        QL_TRY(writeOne(g->get(), item));
        names.push_back(item.name);
    }
    return writeStrings(file, "", orderName, names);
}

} // namespace

Expected<void> writeAnalysis(hid_t file, const AnalysisResult& r)
{
    QL_TRY(writeMeta(file, r.meta));
    QL_TRY(writeNamed(file, "sites", "site_order", r.sites, writeSite));
    QL_TRY(writeResiduals(file, r.residuals));
    QL_TRY(writeMassive(file, r.massive));
    QL_TRY(writeNamed(file, "weights", "weight_order", r.weights, writeWeights));
    QL_TRY(writeNamed(file, "sensitivity", "sensitivity_order", r.sensitivity, writeSensitivity));
    QL_TRY(writeEndToEnd(file, r.endToEnd));
    return {};
}

} // namespace ql::detail

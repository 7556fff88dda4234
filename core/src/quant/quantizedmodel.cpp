#include "quantlens/quant/quantizedmodel.h"

namespace ql {

void QuantizedModel::setLayer(QuantizedLayer layer)
{
    const std::string name = layer.name;
    m_layers[name] = std::move(layer);
    m_byBlock.clear();
    for (const auto& [n, l] : m_layers) m_byBlock[l.block].push_back(&l);
}

const QuantizedLayer* QuantizedModel::layer(const std::string& name) const
{
    auto it = m_layers.find(name);
    return it == m_layers.end() ? nullptr : &it->second;
}

bool QuantizedModel::changesNorms(int i) const
{
    auto it = m_byBlock.find(i);
    if (it == m_byBlock.end()) return false;
    for (const QuantizedLayer* l : it->second)
        if (l->result->inputNorm.size()) return true;
    return false;
}

Expected<void> QuantizedModel::block(int i, BlockWeights& out) const
{
    QL_TRY(m_base.block(i, out));
    auto it = m_byBlock.find(i);
    if (it == m_byBlock.end()) return {};
    for (const QuantizedLayer* l : it->second) {
        // A view of the stored result: no copy per forward pass.
        const RowMatrix& w = l->result->dequantized;
        out.setView(l->kind, w.data(), w.rows(), w.cols());
        if (l->spec.activations.active()) out.actQuant[static_cast<int>(l->kind)] = l->spec.activations;
        if (const Eigen::VectorXf& norm = l->result->inputNorm; norm.size())
            (siteOf(l->kind) == BlockPoint::AttnIn ? out.attnNorm : out.mlpNorm) = norm;
    }
    return {};
}

} // namespace ql

#pragma once
// Hands tensors to tests/reference/torch_grad.py (torch autograd in float64) and reads its
// answers: raw float32 files with an index one way, raw float64 files the other.
#include "testpaths.h"
#include "quantlens/model/weights.h"

#include <QProcess>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

namespace qltest {

using ql::RowMatrix;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr const char* kPython = "/usr/bin/python3";

// Tensors handed to the reference script as raw float32 files with an index.
class Exchange {
public:
    explicit Exchange(const QString& dir) : m_dir(dir.toStdString()) {}
    void put(const std::string& name, const Eigen::Ref<const RowMatrix>& m)
    {
        std::ofstream(m_dir + "/" + name + ".bin", std::ios::binary)
            .write(reinterpret_cast<const char*>(m.data()), std::streamsize(m.size() * sizeof(float)));
        m_index["tensors"][name] = {m.rows(), m.cols()};
    }
    void putVector(const std::string& name, const Eigen::VectorXf& v)
    {
        std::ofstream(m_dir + "/" + name + ".bin", std::ios::binary)
            .write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
        m_index["tensors"][name] = {v.size()};
    }
    nlohmann::json& config() { return m_index["config"]; }
    // Runs the reference; false (with the reason logged) when torch is missing or it fails.
    bool run(const char* mode)
    {
        std::ofstream(m_dir + "/index.json") << m_index.dump();
        QProcess p;
        p.start(kPython,
                {QString(QL_SOURCE_DIR) + "/tests/reference/torch_grad.py", QString::fromStdString(m_dir), mode});
        if (!p.waitForFinished(120000) || p.exitCode() != 0) {
            qWarning("torch_grad.py failed: %s", p.readAllStandardError().constData());
            return false;
        }
        const auto shapes = nlohmann::json::parse(readAll(m_dir + "/ref_index.json"));
        for (const auto& [name, shape] : shapes.items()) {
            const Eigen::Index rows = shape.empty() ? 1 : shape[0].get<Eigen::Index>();
            const Eigen::Index cols = shape.size() > 1 ? shape[1].get<Eigen::Index>() : 1;
            RowMatrixD m(rows, cols);
            std::ifstream(m_dir + "/ref_" + name + ".bin", std::ios::binary)
                .read(reinterpret_cast<char*>(m.data()), std::streamsize(m.size() * sizeof(double)));
            m_ref[name] = m;
        }
        return true;
    }
    const RowMatrixD& ref(const std::string& name) const { return m_ref.at(name); }
    bool has(const std::string& name) const { return m_ref.count(name) > 0; }

private:
    std::string m_dir;
    nlohmann::json m_index;
    std::map<std::string, RowMatrixD> m_ref;
};

inline bool torchAvailable()
{
    QProcess p;
    p.start(kPython, {"-c", "import torch"});
    return p.waitForFinished(60000) && p.exitCode() == 0;
}

// max |ours − ref| / max |ref|: the relative error of a whole tensor.
inline double relError(const Eigen::Ref<const RowMatrix>& ours, const RowMatrixD& ref)
{
    if (ours.rows() != ref.rows() || ours.cols() != ref.cols()) return 1e9;
    return (ours.cast<double>() - ref).cwiseAbs().maxCoeff() / std::max(ref.cwiseAbs().maxCoeff(), 1e-30);
}

} // namespace qltest

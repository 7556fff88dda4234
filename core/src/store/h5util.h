#pragma once

// Thin RAII and error-reporting layer over the HDF5 C API for the analysis store. Every helper
// reports failures as an Error whose message names the HDF5 object ("/sites/x/absmax: ...");
// the caller prefixes the file path.

#include "quantlens/base/expected.h"

#include <hdf5.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ql::detail {

/// Owns an HDF5 identifier and releases it with the matching H5?close function.
class H5Handle {
public:
    using Closer = herr_t (*)(hid_t);
    H5Handle() = default;
    H5Handle(hid_t id, Closer closer) : m_id(id), m_closer(closer) {}
    ~H5Handle() { reset(); }
    H5Handle(H5Handle&& o) noexcept : m_id(o.m_id), m_closer(o.m_closer) { o.m_id = H5I_INVALID_HID; }
    H5Handle& operator=(H5Handle&& o) noexcept
    {
        if (this != &o) {
            reset();
            m_id = o.m_id;
            m_closer = o.m_closer;
            o.m_id = H5I_INVALID_HID;
        }
        return *this;
    }
    H5Handle(const H5Handle&) = delete;
    H5Handle& operator=(const H5Handle&) = delete;

    /// The identifier (negative when nothing is held).
    hid_t get() const { return m_id; }
    bool valid() const { return m_id >= 0; }
    /// Closes now; false when closing failed (for a file this is where buffered data is flushed).
    bool close()
    {
        if (m_id < 0) return true;
        const herr_t rc = m_closer ? m_closer(m_id) : 0;
        m_id = H5I_INVALID_HID;
        return rc >= 0;
    }
    void reset() { close(); }

private:
    hid_t m_id = H5I_INVALID_HID;
    Closer m_closer = nullptr;
};

/// Turns off HDF5's printing of error stacks to stderr; failures are reported through Expected.
void silenceH5Errors();
/// The most specific description on HDF5's current error stack ("" when empty); call right
/// after the failing HDF5 call, before any other.
std::string lastH5Error();
/// Joins a group path and a member name: ("/sites", "a") -> "/sites/a".
std::string joinPath(const std::string& where, const std::string& name);

/// Creates a group; trackOrder records link creation order so h5py lists members in that order.
Expected<H5Handle> createGroup(hid_t loc, const std::string& where, const std::string& name, bool trackOrder = false);
/// Opens an existing group.
Expected<H5Handle> openGroup(hid_t loc, const std::string& where, const std::string& name);
/// True when loc has a link called name.
bool hasLink(hid_t loc, const std::string& name);
/// True when loc has an attribute called name.
bool hasAttr(hid_t loc, const std::string& name);
/// Names of the members of a group, in creation order when it was tracked, else by name.
Expected<std::vector<std::string>> listMembers(hid_t group, const std::string& where);

// ---- Datasets: fileType is the little-endian on-disk type, memType the native one. ----

/// Writes a dataset of the given shape (any dimension may be 0) from contiguous memory.
Expected<void> writeRaw(hid_t loc, const std::string& where, const std::string& name, hid_t fileType, hid_t memType,
                        const void* data, const std::vector<hsize_t>& dims);
/// Reads a whole dataset converted to memType; returns its shape and fills out (elemSize bytes each).
Expected<std::vector<hsize_t>> readRaw(hid_t loc, const std::string& where, const std::string& name, hid_t memType,
                                       size_t elemSize, std::vector<unsigned char>& out);
/// Writes a 1-D dataset of variable-length UTF-8 strings.
Expected<void> writeStrings(hid_t loc, const std::string& where, const std::string& name,
                            const std::vector<std::string>& values);
/// Reads a 1-D dataset of strings (variable- or fixed-length).
Expected<std::vector<std::string>> readStrings(hid_t loc, const std::string& where, const std::string& name);

// ---- Scalar attributes. ----

/// Writes a scalar numeric attribute.
Expected<void> writeAttrRaw(hid_t loc, const std::string& where, const std::string& name, hid_t fileType, hid_t memType,
                            const void* value);
/// Reads a scalar numeric attribute converted to memType into value.
Expected<void> readAttrRaw(hid_t loc, const std::string& where, const std::string& name, hid_t memType, void* value);
/// Writes a scalar variable-length UTF-8 string attribute (what h5py writes for str).
Expected<void> writeAttr(hid_t loc, const std::string& where, const std::string& name, const std::string& value);
/// Reads a scalar string attribute (variable- or fixed-length).
Expected<std::string> readAttrString(hid_t loc, const std::string& where, const std::string& name);

/// The HDF5 on-disk and native types for a C++ element type.
template <class T>
struct H5Types;
template <>
struct H5Types<float> {
    static hid_t file() { return H5T_IEEE_F32LE; }
    static hid_t mem() { return H5T_NATIVE_FLOAT; }
};
template <>
struct H5Types<double> {
    static hid_t file() { return H5T_IEEE_F64LE; }
    static hid_t mem() { return H5T_NATIVE_DOUBLE; }
};
template <>
struct H5Types<int32_t> {
    static hid_t file() { return H5T_STD_I32LE; }
    static hid_t mem() { return H5T_NATIVE_INT32; }
};
template <>
struct H5Types<int64_t> {
    static hid_t file() { return H5T_STD_I64LE; }
    static hid_t mem() { return H5T_NATIVE_INT64; }
};
template <>
struct H5Types<uint64_t> {
    static hid_t file() { return H5T_STD_U64LE; }
    static hid_t mem() { return H5T_NATIVE_UINT64; }
};

/// Writes n values as a 1-D dataset.
template <class T>
Expected<void> writeVector(hid_t loc, const std::string& where, const std::string& name, const T* data, size_t n)
{
    return writeRaw(loc, where, name, H5Types<T>::file(), H5Types<T>::mem(), data, {hsize_t(n)});
}

/// Reads a dataset of the expected rank into a flat vector; dims receives its shape.
template <class T>
Expected<std::vector<T>> readArray(hid_t loc, const std::string& where, const std::string& name, int rank,
                                   std::vector<hsize_t>* dims = nullptr)
{
    std::vector<unsigned char> bytes;
    auto shape = readRaw(loc, where, name, H5Types<T>::mem(), sizeof(T), bytes);
    if (!shape) return shape.error();
    if (int(shape->size()) != rank)
        return makeError(joinPath(where, name) + ": expected " + std::to_string(rank) + " dimension(s), found " +
                         std::to_string(shape->size()));
    std::vector<T> out(bytes.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    if (dims) *dims = std::move(*shape);
    return out;
}

/// Writes a scalar numeric attribute of C++ type T.
template <class T>
Expected<void> writeAttr(hid_t loc, const std::string& where, const std::string& name, T value)
{
    return writeAttrRaw(loc, where, name, H5Types<T>::file(), H5Types<T>::mem(), &value);
}

/// Reads a scalar numeric attribute as C++ type T.
template <class T>
Expected<T> readAttr(hid_t loc, const std::string& where, const std::string& name)
{
    T value{};
    auto r = readAttrRaw(loc, where, name, H5Types<T>::mem(), &value);
    if (!r) return r.error();
    return value;
}

} // namespace ql::detail

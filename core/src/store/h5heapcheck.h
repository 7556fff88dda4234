#pragma once

// Checks object headers and variable-length strings against the file before HDF5 reads them. HDF5 1.10 copies a
// string's global-heap object into a buffer sized by the string's descriptor without comparing
// the two sizes, and walks a heap collection by the sizes it declares: a damaged store can make
// it write out of bounds. These checks read the descriptors and the heap collections from the
// file bytes and refuse any that HDF5 would misread.

#include "quantlens/base/expected.h"

#include <hdf5.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>

namespace ql::detail {

/// Reads descriptors, object headers and heap collections of one open HDF5 file, bounded by its size.
class H5HeapCheck {
public:
    /// Prepares to check the file that `anyObject` belongs to; `object` names it in errors.
    static Expected<H5HeapCheck> open(hid_t anyObject, const std::string& object);

    /// Checks, before H5Fopen, the header of the root group the superblock of the file at `path`
    /// points at (HDF5 allocates its declared chunk sizes as it opens the file).
    static Expected<void> checkRootGroup(const std::string& path);

    /// Bytes of a stored address and of a stored length (the superblock's sizes).
    size_t addressBytes() const { return m_addrBytes; }
    /// The file's size in bytes.
    uint64_t fileSize() const { return m_size; }
    /// Reads n bytes at offset; false when they are not all inside the file.
    bool read(uint64_t offset, void* out, size_t n);

    /// Checks one descriptor (length, heap address, index) as stored at `raw`: the heap object
    /// must exist in a well-formed collection inside the file and hold exactly `length` bytes.
    Expected<void> checkDescriptor(const unsigned char* raw, const std::string& what);

    /// Checks the header of the object that link `name` of `loc` points at before HDF5 opens it:
    /// every chunk must lie inside the file.
    Expected<void> checkObjectHeader(hid_t loc, const std::string& name, const std::string& what);

    /// Finds the stored descriptor of the scalar string attribute `name` of the object `loc` in
    /// the object's header and checks it.
    Expected<void> checkAttribute(hid_t loc, const std::string& name, const std::string& what);

private:
    H5HeapCheck() = default;
    uint64_t readAddress(const unsigned char* p) const;
    // Object sizes by index of the collection at an address, parsed once.
    Expected<const std::map<uint32_t, uint64_t>*> collection(uint64_t address, const std::string& what);
    // Walks the object header at `address`, refusing a chunk outside the file (HDF5 allocates
    // each chunk's declared size before reading it); returns the data of attribute message
    // `*name` when one is asked for and found.
    Expected<std::optional<std::string>> walkHeader(uint64_t address, const std::string* name, const std::string& what);

    std::ifstream m_in;
    uint64_t m_size = 0;
    size_t m_addrBytes = 8;
    size_t m_lenBytes = 8;
    std::map<uint64_t, std::map<uint32_t, uint64_t>> m_collections;
};

} // namespace ql::detail

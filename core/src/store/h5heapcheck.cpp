#include "store/h5heapcheck.h"

#include "store/h5util.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace ql::detail {

namespace {

constexpr uint16_t kMsgContinuation = 0x10;
constexpr uint16_t kMsgAttribute = 0x0C;
constexpr uint16_t kMsgAttributeInfo = 0x15;
constexpr int kMaxHeaderChunks = 256;

uint64_t leValue(const unsigned char* p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
}

uint64_t align8(uint64_t n)
{
    return (n + 7) & ~uint64_t(7);
}

} // namespace

Expected<H5HeapCheck> H5HeapCheck::open(hid_t anyObject, const std::string& object)
{
    H5HeapCheck c;
    H5Handle file(H5Iget_file_id(anyObject), H5Fclose);
    H5Handle fcpl(H5Fget_create_plist(file.get()), H5Pclose);
    hsize_t size = 0, userBlock = 0;
    if (H5Pget_sizes(fcpl.get(), &c.m_addrBytes, &c.m_lenBytes) < 0 || H5Fget_filesize(file.get(), &size) < 0 ||
        H5Pget_userblock(fcpl.get(), &userBlock) < 0)
        return makeError(object + ": cannot read the file's layout");
    if (userBlock != 0) return makeError(object + ": a file with a user block, which QuantLens does not write");
    if (c.m_addrBytes < 2 || c.m_addrBytes > 8 || c.m_lenBytes < 2 || c.m_lenBytes > 8)
        return makeError(object + ": stored addresses of " + std::to_string(c.m_addrBytes) +
                         " bytes are not supported");
    const ssize_t nameLen = H5Fget_name(file.get(), nullptr, 0);
    std::string path(size_t(std::max<ssize_t>(nameLen, 0)), '\0');
    if (nameLen <= 0 || H5Fget_name(file.get(), path.data(), path.size() + 1) < 0)
        return makeError(object + ": cannot name the file");
    c.m_in.open(path, std::ios::binary);
    if (!c.m_in) return makeError(object + ": cannot reopen " + path + " to check it");
    c.m_size = size;
    return c;
}

Expected<void> H5HeapCheck::checkRootGroup(const std::string& path)
{
    H5HeapCheck c;
    c.m_in.open(path, std::ios::binary | std::ios::ate);
    if (!c.m_in) return makeError(path + ": cannot open");
    c.m_size = uint64_t(c.m_in.tellg());
    unsigned char sb[128] = {};
    const size_t got = size_t(std::min<uint64_t>(sizeof sb, c.m_size));
    if (!c.read(0, sb, got) || got < 16 || std::memcmp(sb, "\x89HDF\r\n\x1a\n", 8) != 0)
        return {}; // not at offset 0 (a user block) or not HDF5: H5Fopen says which
    const int version = sb[8];
    const size_t at = version <= 1 ? 13 : 9; // the size of offsets, then of lengths
    c.m_addrBytes = sb[at];
    c.m_lenBytes = sb[at + 1];
    if (c.m_addrBytes < 2 || c.m_addrBytes > 8 || c.m_lenBytes < 2 || c.m_lenBytes > 8 || version > 3)
        return makeError(path + ": an HDF5 superblock QuantLens does not read (version " + std::to_string(version) +
                         ")");
    // v0/v1: four addresses after the fixed fields, then the root entry's name offset and its
    // header address; v2/v3: base, extension, end of file, then the root header address.
    const size_t rootAt = version <= 1 ? (version == 0 ? 24 : 28) + 5 * c.m_addrBytes : 12 + 3 * c.m_addrBytes;
    if (rootAt + c.m_addrBytes > got) return makeError(path + ": its superblock is cut short");
    auto walked = c.walkHeader(c.readAddress(sb + rootAt), nullptr, path + ": the root group");
    if (!walked) return walked.error();
    return {};
}

bool H5HeapCheck::read(uint64_t offset, void* out, size_t n)
{
    if (offset > m_size || n > m_size - offset) return false;
    m_in.clear();
    return bool(m_in.seekg(std::streamoff(offset))) && bool(m_in.read(static_cast<char*>(out), std::streamsize(n)));
}

uint64_t H5HeapCheck::readAddress(const unsigned char* p) const
{
    return leValue(p, m_addrBytes);
}

Expected<const std::map<uint32_t, uint64_t>*> H5HeapCheck::collection(uint64_t address, const std::string& what)
{
    if (auto it = m_collections.find(address); it != m_collections.end()) return &it->second;
    const std::string where = what + ": the heap collection at byte " + std::to_string(address);
    const size_t head = 8 + m_lenBytes, objHead = 8 + m_lenBytes;
    unsigned char prefix[16];
    if (!read(address, prefix, head)) return makeError(where + " is outside the file");
    if (std::memcmp(prefix, "GCOL", 4) != 0 || prefix[4] != 1) return makeError(where + " is not a heap collection");
    const uint64_t size = leValue(prefix + 8, m_lenBytes);
    if (size < head || size > m_size - address)
        return makeError(where + " declares " + std::to_string(size) + " bytes, which the file does not hold");
    std::vector<unsigned char> bytes(size);
    if (!read(address, bytes.data(), bytes.size())) return makeError(where + " cannot be read");
    // Walks the objects exactly as HDF5 does, refusing any whose declared size leaves the collection.
    std::map<uint32_t, uint64_t> objects;
    uint64_t p = head;
    while (p < size) {
        const uint64_t left = size - p;
        if (left < objHead) break; // too small for an object: free space
        const uint32_t index = uint32_t(leValue(&bytes[p], 2));
        const uint64_t objSize = leValue(&bytes[p + 8], m_lenBytes);
        const uint64_t need = index == 0 ? objSize : (objSize > left ? left + 1 : objHead + align8(objSize));
        if (need > left || (index == 0 && need < objHead))
            return makeError(where + ": object " + std::to_string(index) + " declares " + std::to_string(objSize) +
                             " bytes, more than the collection holds");
        if (index != 0) objects[index] = objSize;
        p += need;
    }
    return &(m_collections[address] = std::move(objects));
}

Expected<void> H5HeapCheck::checkDescriptor(const unsigned char* raw, const std::string& what)
{
    const uint64_t length = leValue(raw, 4);
    if (length == 0) return {}; // an empty string has no heap object
    if (length > m_size)
        return makeError(what + " declares " + std::to_string(length) + " bytes, more than the whole file");
    const uint64_t address = readAddress(raw + 4);
    const uint32_t index = uint32_t(leValue(raw + 4 + m_addrBytes, 4));
    auto objects = collection(address, what);
    if (!objects) return objects.error();
    const auto it = (*objects)->find(index);
    if (it == (*objects)->end())
        return makeError(what + " points at heap object " + std::to_string(index) + ", which does not exist");
    if (it->second != length)
        return makeError(what + " declares " + std::to_string(length) + " bytes but its heap object holds " +
                         std::to_string(it->second));
    return {};
}

Expected<std::optional<std::string>> H5HeapCheck::walkHeader(uint64_t address, const std::string* name,
                                                             const std::string& what)
{
    const std::string where = what + ": the object header at byte " + std::to_string(address);
    unsigned char prefix[40];
    if (!read(address, prefix, 16)) return makeError(where + " is outside the file");
    struct Chunk {
        uint64_t offset, length;
    };
    std::vector<Chunk> chunks;
    const bool v2 = std::memcmp(prefix, "OHDR", 4) == 0;
    uint8_t headerFlags = 0;
    if (v2) {
        headerFlags = prefix[5];
        if (prefix[4] != 2) return makeError(where + " has an unknown version");
        const size_t sizeBytes = size_t(1) << (headerFlags & 3);
        const size_t at = 6 + ((headerFlags & 0x20) ? 16 : 0) + ((headerFlags & 0x10) ? 4 : 0);
        if (!read(address, prefix, at + sizeBytes)) return makeError(where + " is outside the file");
        chunks.push_back({address + at + sizeBytes, leValue(prefix + at, sizeBytes)});
    } else {
        if (prefix[0] != 1) return makeError(where + " is not an object header");
        chunks.push_back({address + 16, leValue(prefix + 8, 4)});
    }
    const size_t msgHead = v2 ? 4 + ((headerFlags & 0x04) ? 2 : 0) : 8;
    bool dense = false;
    for (size_t c = 0; c < chunks.size(); ++c) {
        if (c >= kMaxHeaderChunks) return makeError(where + " has more continuation chunks than HDF5 writes");
        if (chunks[c].length > m_size) return makeError(where + " has a chunk larger than the file");
        std::vector<unsigned char> bytes(chunks[c].length);
        if (!read(chunks[c].offset, bytes.data(), bytes.size()))
            return makeError(where + " has a chunk outside the file");
        size_t p = 0, end = bytes.size();
        if (v2 && c > 0) { // a continuation chunk: "OCHK", messages, checksum
            if (end < 8 || std::memcmp(bytes.data(), "OCHK", 4) != 0)
                return makeError(where + " has a damaged continuation chunk");
            p = 4;
            end -= 4;
        }
        while (end - p >= msgHead) {
            const uint16_t type = uint16_t(v2 ? bytes[p] : leValue(&bytes[p], 2));
            const uint64_t size = leValue(&bytes[p + (v2 ? 1 : 2)], 2);
            const uint8_t flags = bytes[p + (v2 ? 3 : 4)];
            p += msgHead;
            if (size > end - p) return makeError(where + " has a message larger than its chunk");
            const unsigned char* d = &bytes[p];
            if (type == kMsgContinuation && size >= m_addrBytes + m_lenBytes)
                chunks.push_back({readAddress(d), leValue(d + m_addrBytes, m_lenBytes)});
            dense = dense || type == kMsgAttributeInfo;
            if (type == kMsgAttribute && !(flags & 0x02) && size >= 8) {
                const int version = d[0];
                const uint64_t nameSize = leValue(d + 2, 2), typeSize = leValue(d + 4, 2),
                               spaceSize = leValue(d + 6, 2);
                const auto pad = [&](uint64_t n) { return version == 1 ? align8(n) : n; };
                const uint64_t nameAt = version == 3 ? 9 : 8;
                const uint64_t dataAt = nameAt + pad(nameSize) + pad(typeSize) + pad(spaceSize);
                if (name && version >= 1 && version <= 3 && nameSize > 0 && dataAt <= size &&
                    std::string(reinterpret_cast<const char*>(d + nameAt), nameSize - 1) == *name)
                    return std::optional<std::string>(
                        std::string(reinterpret_cast<const char*>(d + dataAt), size - dataAt));
            }
            p += size;
        }
    }
    if (name && dense) return makeError(what + ": stored in dense attribute storage, which QuantLens does not write");
    return std::optional<std::string>();
}

Expected<void> H5HeapCheck::checkObjectHeader(hid_t loc, const std::string& name, const std::string& what)
{
    H5L_info_t info;
    if (H5Lget_info(loc, name.c_str(), &info, H5P_DEFAULT) < 0) return makeError(what + ": cannot read its link");
    if (info.type != H5L_TYPE_HARD)
        return makeError(what + ": a link to another file or name, which QuantLens does not write");
    auto walked = walkHeader(info.u.address, nullptr, what);
    if (!walked) return walked.error();
    return {};
}

Expected<void> H5HeapCheck::checkAttribute(hid_t loc, const std::string& name, const std::string& what)
{
    H5O_info_t info;
    if (H5Oget_info2(loc, &info, H5O_INFO_BASIC) < 0) return makeError(what + ": cannot locate its object");
    auto data = walkHeader(info.addr, &name, what);
    if (!data) return data.error();
    if (!*data) return makeError(what + ": not found in its object's header");
    if ((*data)->size() < 8 + m_addrBytes) return makeError(what + ": its stored value is too short for a string");
    return checkDescriptor(reinterpret_cast<const unsigned char*>((*data)->data()), what);
}

} // namespace ql::detail

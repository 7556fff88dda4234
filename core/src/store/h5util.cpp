#include "store/h5util.h"

#include "store/h5heapcheck.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

namespace ql::detail {

namespace {

herr_t firstDescription(unsigned, const H5E_error2_t* err, void* out)
{
    auto* s = static_cast<std::string*>(out);
    if (s->empty() && err && err->desc) *s = err->desc;
    return 0;
}

// "where/name: what (hdf5 detail)". Must be called straight after the failing call so the
// HDF5 error stack still describes that failure.
Error fail(const std::string& object, const std::string& what)
{
    const std::string detail = lastH5Error();
    return makeError(object + ": " + what + (detail.empty() ? "" : " (" + detail + ")"));
}

std::string attrName(const std::string& where, const std::string& name)
{
    return (where.empty() ? std::string("/") : where) + " attribute " + name;
}

H5Handle makeVlenStringType()
{
    H5Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
    if (t.valid()) {
        H5Tset_size(t.get(), H5T_VARIABLE);
        H5Tset_cset(t.get(), H5T_CSET_UTF8);
    }
    return t;
}

// Reads n strings of an attribute or dataset whose file type is ftype through read(memType, buf).
template <class ReadFn>
Expected<std::vector<std::string>> readStringData(hid_t ftype, hid_t space, size_t n, const std::string& object,
                                                  ReadFn read)
{
    if (H5Tget_class(ftype) != H5T_STRING) return makeError(object + ": expected text, found another type");
    std::vector<std::string> out;
    out.reserve(n);
    if (H5Tis_variable_str(ftype) > 0) {
        // HDF5 sizes its conversion buffers by the file's character width: one byte in any text
        // QuantLens or h5py writes; a damaged width would cost gigabytes per string.
        H5Handle base(H5Tget_super(ftype), H5Tclose);
        const size_t charBytes = base.valid() ? H5Tget_size(base.get()) : 0;
        if (charBytes != 1)
            return makeError(object + ": text whose characters are " + std::to_string(charBytes) +
                             " bytes wide, expected 1");
        H5Handle mt = makeVlenStringType();
        H5Tset_cset(mt.get(), H5Tget_cset(ftype));
        std::vector<char*> buf(n, nullptr);
        if (n && read(mt.get(), buf.data()) < 0) return fail(object, "cannot read text");
        for (char* p : buf) out.emplace_back(p ? p : "");
#if H5_VERSION_GE(1, 12, 0)
        if (n) H5Treclaim(mt.get(), space, H5P_DEFAULT, buf.data());
#else
        if (n) H5Dvlen_reclaim(mt.get(), space, H5P_DEFAULT, buf.data());
#endif
        return out;
    }
    // Fixed-length strings (as written by numpy 'S' arrays): NUL-padded, possibly unterminated.
    constexpr size_t kMaxFixedWidth = 1 << 20; // far wider than any name or hash QuantLens stores
    const size_t width = H5Tget_size(ftype);
    if (width == 0 || width > kMaxFixedWidth)
        return makeError(object + ": fixed-length text of " + std::to_string(width) + " bytes per string");
    H5Handle mt(H5Tcopy(ftype), H5Tclose);
    std::vector<char> buf(n * width + 1, '\0');
    if (n && read(mt.get(), buf.data()) < 0) return fail(object, "cannot read text");
    for (size_t i = 0; i < n; ++i) {
        const char* p = buf.data() + i * width;
        size_t len = 0;
        while (len < width && p[len] != '\0') ++len;
        std::string s(p, len);
        while (!s.empty() && s.back() == ' ') s.pop_back(); // space-padded strings
        out.push_back(std::move(s));
    }
    return out;
}

// HDF5 allocates an object header's declared chunk sizes when it opens the object.
Expected<void> checkHeaderOf(hid_t loc, const std::string& name, const std::string& object)
{
    auto check = H5HeapCheck::open(loc, object);
    if (!check) return check.error();
    return check->checkObjectHeader(loc, name, object);
}

bool isNumeric(hid_t type)
{
    const H5T_class_t c = H5Tget_class(type);
    return c == H5T_INTEGER || c == H5T_FLOAT;
}

} // namespace

void silenceH5Errors()
{
    // HDF5's exit handler closes what is still open, and crashes on a file whose close already
    // failed (a full disk): the process would die after reporting the error. The OS reclaims
    // everything at exit anyway. Effective only before the library's first use, as here.
    static const bool noExitHandler = (H5dont_atexit(), true);
    (void)noExitHandler;
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

std::string lastH5Error()
{
    std::string out;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, firstDescription, &out);
    // A failed system call is described over several lines with buffer addresses; the OS's
    // reason is what a user needs, on the one line an error gets.
    const std::string key = "error message = '";
    if (const size_t at = out.find(key); at != std::string::npos) {
        const size_t end = out.find('\'', at + key.size());
        if (end != std::string::npos) out = out.substr(at + key.size(), end - at - key.size());
    }
    for (char& c : out)
        if (c == '\n' || c == '\r') c = ' ';
    return out;
}

std::string joinPath(const std::string& where, const std::string& name)
{
    if (where.empty() || where == "/") return "/" + name;
    return where + "/" + name;
}

Expected<H5Handle> createGroup(hid_t loc, const std::string& where, const std::string& name, bool trackOrder)
{
    H5Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
    if (trackOrder) H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Handle g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) return fail(joinPath(where, name), "cannot create group");
    return g;
}

Expected<H5Handle> openGroup(hid_t loc, const std::string& where, const std::string& name)
{
    if (!hasLink(loc, name)) return makeError(joinPath(where, name) + ": group missing");
    QL_TRY(checkHeaderOf(loc, name, joinPath(where, name)));
    H5Handle g(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) return fail(joinPath(where, name), "cannot open group");
    return g;
}

bool hasLink(hid_t loc, const std::string& name)
{
    return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0;
}

bool hasAttr(hid_t loc, const std::string& name)
{
    return H5Aexists(loc, name.c_str()) > 0;
}

Expected<std::vector<std::string>> listMembers(hid_t group, const std::string& where)
{
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) return fail(where, "cannot list group");
    unsigned flags = 0;
    H5Handle gcpl(H5Gget_create_plist(group), H5Pclose);
    if (gcpl.valid()) H5Pget_link_creation_order(gcpl.get(), &flags);
    const H5_index_t index = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    std::vector<std::string> names;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
        const ssize_t len = H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
        if (len < 0) return fail(where, "cannot list group");
        std::vector<char> buf(size_t(len) + 1, '\0');
        H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, buf.data(), buf.size(), H5P_DEFAULT);
        names.emplace_back(buf.data(), size_t(len));
    }
    return names;
}

Expected<void> writeRaw(hid_t loc, const std::string& where, const std::string& name, hid_t fileType, hid_t memType,
                        const void* data, const std::vector<hsize_t>& dims)
{
    const std::string object = joinPath(where, name);
    H5Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
    if (!space.valid()) return fail(object, "cannot create dataspace");
    H5Handle ds(H5Dcreate2(loc, name.c_str(), fileType, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) return fail(object, "cannot create dataset");
    hsize_t total = 1;
    for (hsize_t d : dims) total *= d;
    // HDF5 rejects a null buffer even for zero elements, and empty Eigen vectors have one.
    if (total > 0 && H5Dwrite(ds.get(), memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        return fail(object, "cannot write dataset");
    return {};
}

namespace {

// A dataset's shape is only a declaration: before memory is allocated for it, its elements must
// fit the bytes the file stores for it (all of them for the contiguous layout QuantLens writes;
// chunked data may be compressed, so there only a bound on the ratio is checked).
Expected<void> checkDeclaredSize(hid_t ds, hid_t fileType, const std::vector<hsize_t>& dims, const std::string& object)
{
    constexpr hsize_t kMaxCompression = 64;
    const hsize_t elem = std::max<hsize_t>(1, H5Tget_size(fileType));
    hsize_t bytes = elem;
    for (hsize_t d : dims) {
        if (d != 0 && bytes > std::numeric_limits<hsize_t>::max() / d)
            return makeError(object + ": a shape whose size overflows");
        bytes *= d;
    }
    if (bytes == 0 || dims.empty()) return {};
    const hsize_t stored = H5Dget_storage_size(ds);
    H5Handle dcpl(H5Dget_create_plist(ds), H5Pclose);
    const bool contiguous = H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS;
    const hsize_t limit = contiguous ? stored
                                     : (stored > std::numeric_limits<hsize_t>::max() / kMaxCompression
                                            ? std::numeric_limits<hsize_t>::max()
                                            : stored * kMaxCompression);
    if (bytes > limit)
        return makeError(object + ": its shape declares " + std::to_string(bytes) + " bytes but the file stores " +
                         std::to_string(stored) + " for it");
    return {};
}

} // namespace

Expected<std::vector<hsize_t>> readRaw(hid_t loc, const std::string& where, const std::string& name, hid_t memType,
                                       size_t elemSize, std::vector<unsigned char>& out)
{
    const std::string object = joinPath(where, name);
    if (!hasLink(loc, name)) return makeError(object + ": dataset missing");
    QL_TRY(checkHeaderOf(loc, name, object));
    H5Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) return fail(object, "cannot open dataset");
    H5Handle type(H5Dget_type(ds.get()), H5Tclose);
    if (!isNumeric(type.get())) return makeError(object + ": expected numbers, found another type");
    H5Handle space(H5Dget_space(ds.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) return fail(object, "cannot read shape");
    std::vector<hsize_t> dims(size_t(rank), 0);
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    QL_TRY(checkDeclaredSize(ds.get(), type.get(), dims, object));
    hsize_t total = 1;
    for (hsize_t d : dims) total *= d;
    out.assign(size_t(total) * elemSize, 0);
    if (total > 0 && H5Dread(ds.get(), memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
        return fail(object, "cannot read dataset");
    return dims;
}

Expected<void> writeStrings(hid_t loc, const std::string& where, const std::string& name,
                            const std::vector<std::string>& values)
{
    const std::string object = joinPath(where, name);
    H5Handle type = makeVlenStringType();
    const hsize_t n = values.size();
    H5Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    H5Handle ds(H5Dcreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                H5Dclose);
    if (!ds.valid()) return fail(object, "cannot create dataset");
    std::vector<const char*> ptrs;
    for (const auto& v : values) ptrs.push_back(v.c_str());
    if (n && H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
        return fail(object, "cannot write dataset");
    return {};
}

// HDF5 allocates (and fills) each variable-length string's declared length before it reads the
// string, and copies the heap object whatever its size, so a damaged descriptor or heap can cost
// 4 GiB per element or write out of bounds. For a contiguous dataset the descriptors (length, heap
// address, heap index) are read from the file first and each checked against the file and its heap
// object; other layouts hold no text QuantLens writes.
Expected<void> checkVlenLengths(hid_t ds, size_t n, const std::string& object)
{
    const haddr_t offset = H5Dget_offset(ds);
    if (n == 0 || offset == HADDR_UNDEF) {
        H5Handle dcpl(H5Dget_create_plist(ds), H5Pclose);
        if (n && H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS)
            return makeError(object + ": text in a storage layout QuantLens does not write");
        return {}; // nothing stored: the strings read as empty
    }
    auto check = H5HeapCheck::open(ds, object);
    if (!check) return check.error();
    const uint64_t stride = 8 + check->addressBytes(), fileSize = check->fileSize();
    if (n > fileSize / stride || offset > fileSize - n * stride)
        return makeError(object + ": " + std::to_string(n) + " strings do not fit the file");
    std::vector<unsigned char> raw(n * stride);
    if (!check->read(offset, raw.data(), raw.size())) return makeError(object + ": cannot read the string descriptors");
    for (size_t i = 0; i < n; ++i)
        QL_TRY(check->checkDescriptor(raw.data() + i * stride, object + ": string " + std::to_string(i)));
    return {};
}

Expected<std::vector<std::string>> readStrings(hid_t loc, const std::string& where, const std::string& name)
{
    const std::string object = joinPath(where, name);
    if (!hasLink(loc, name)) return makeError(object + ": dataset missing");
    QL_TRY(checkHeaderOf(loc, name, object));
    H5Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) return fail(object, "cannot open dataset");
    H5Handle type(H5Dget_type(ds.get()), H5Tclose);
    H5Handle space(H5Dget_space(ds.get()), H5Sclose);
    if (H5Sget_simple_extent_ndims(space.get()) != 1) return makeError(object + ": expected a 1-D list of names");
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0) return fail(object, "cannot read shape");
    if (H5Tis_variable_str(type.get()) > 0)
        QL_TRY(checkVlenLengths(ds.get(), size_t(n), object));
    else
        QL_TRY(checkDeclaredSize(ds.get(), type.get(), {hsize_t(n)}, object));
    return readStringData(type.get(), space.get(), size_t(n), object, [&](hid_t mt, void* buf) {
        return H5Dread(ds.get(), mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    });
}

Expected<void> writeAttrRaw(hid_t loc, const std::string& where, const std::string& name, hid_t fileType, hid_t memType,
                            const void* value)
{
    H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    H5Handle attr(H5Acreate2(loc, name.c_str(), fileType, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) return fail(attrName(where, name), "cannot create");
    if (H5Awrite(attr.get(), memType, value) < 0) return fail(attrName(where, name), "cannot write");
    return {};
}

Expected<void> readAttrRaw(hid_t loc, const std::string& where, const std::string& name, hid_t memType, void* value)
{
    const std::string object = attrName(where, name);
    if (!hasAttr(loc, name)) return makeError(object + ": missing");
    H5Handle attr(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) return fail(object, "cannot open");
    H5Handle type(H5Aget_type(attr.get()), H5Tclose);
    if (!isNumeric(type.get())) return makeError(object + ": expected a number, found another type");
    H5Handle space(H5Aget_space(attr.get()), H5Sclose);
    if (H5Sget_simple_extent_npoints(space.get()) != 1) return makeError(object + ": expected a single value");
    if (H5Aread(attr.get(), memType, value) < 0) return fail(object, "cannot read");
    return {};
}

Expected<void> writeAttr(hid_t loc, const std::string& where, const std::string& name, const std::string& value)
{
    H5Handle type = makeVlenStringType();
    H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    H5Handle attr(H5Acreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) return fail(attrName(where, name), "cannot create");
    const char* p = value.c_str();
    if (H5Awrite(attr.get(), type.get(), &p) < 0) return fail(attrName(where, name), "cannot write");
    return {};
}

Expected<std::string> readAttrString(hid_t loc, const std::string& where, const std::string& name)
{
    const std::string object = attrName(where, name);
    if (!hasAttr(loc, name)) return makeError(object + ": missing");
    H5Handle attr(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) return fail(object, "cannot open");
    H5Handle type(H5Aget_type(attr.get()), H5Tclose);
    H5Handle space(H5Aget_space(attr.get()), H5Sclose);
    if (H5Sget_simple_extent_npoints(space.get()) != 1) return makeError(object + ": expected a single text");
    if (H5Tis_variable_str(type.get()) > 0) {
        auto check = H5HeapCheck::open(loc, object);
        if (!check) return check.error();
        QL_TRY(check->checkAttribute(loc, name, object));
    }
    auto r = readStringData(type.get(), space.get(), 1, object,
                            [&](hid_t mt, void* buf) { return H5Aread(attr.get(), mt, buf); });
    if (!r) return r.error();
    return std::move(r->front());
}

} // namespace ql::detail

#pragma once
// Zip archives of stored (uncompressed) entries, as torch.save writes them: the central directory
// read with every offset and size checked against the file (ZIP64 records included), and a writer
// that lays entries out as torch's miniz writer does (data 64-byte aligned through an extra field,
// data descriptors, ZIP64 records). CRC-32 as zip defines it. io/torch_checkpoint.hpp describes
// the layout torch puts in them.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "bitgrad/core/atomic_file.hpp"
#include "bitgrad/core/error.hpp"

namespace bitgrad::io::detail {

// CRC-32 as zip uses it (reflected polynomial 0xEDB88320), eight bytes a step.
inline constexpr std::array<std::array<uint32_t, 256>, 8> kCrc32Tables = [] {
    std::array<std::array<uint32_t, 256>, 8> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
        for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    return t;
}();

inline uint32_t crc32(const void* data, uint64_t n, uint32_t crc = 0) {
    const auto& t = kCrc32Tables;
    const uint8_t* p = static_cast<const uint8_t*>(data);
    crc = ~crc;
    for (; n >= 8; p += 8, n -= 8) {
        const uint32_t a = crc ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
        crc = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^ t[3][p[4]] ^
              t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    }
    for (; n > 0; --n) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

// The n-byte little-endian unsigned integer at p (n <= 8).
inline uint64_t le(const uint8_t* p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
    return v;
}
inline void put_le(std::string& out, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out += char(uint8_t(v >> (8 * i)));
}

// A string read from a file, fit for an error message: at most 200 bytes, non-printable ones as \xNN.
inline std::string printable(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < 200; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += char(c);
        } else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return s.size() > 200 ? out + "..." : out;
}

// ---- zip: the central directory of a file of stored entries ----

struct ZipEntry {
    std::string name;
    uint32_t crc = 0;
    uint64_t size = 0, header = 0, data = 0;  // bytes; file offsets of the local header and of the bytes
};

inline constexpr uint32_t kZipLocalSig = 0x04034b50, kZipCentralSig = 0x02014b50, kZipEndSig = 0x06054b50,
                          kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50, kZipDescriptorSig = 0x08074b50;

// Every entry of the zip archive d[0, size), each checked to lie inside the file before the central
// directory, stored (method 0), unencrypted, with a local header that agrees, none overlapping another.
inline std::vector<ZipEntry> read_zip_directory(const uint8_t* d, uint64_t size, const std::string& path) {
    BITGRAD_CHECK(size >= 22 && le(d, 4) == kZipLocalSig,
                  path << ": not a zip archive (torch.save's format since PyTorch 1.6)"
                       << (size >= 2 && d[0] == 0x80 && d[1] <= 5
                               ? ": it is a bare pickle, torch.save's legacy format (PyTorch < 1.6), which is not "
                                 "read: load it and save it again with a recent PyTorch"
                               : ""));
    // The end record is the last 22 bytes, unless a comment (at most 65535 bytes) follows it.
    uint64_t end = size;
    const uint64_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
    for (uint64_t p = size - 22 + 1; p-- > lowest;)
        if (le(d + p, 4) == kZipEndSig && le(d + p + 20, 2) == size - p - 22) {
            end = p;
            break;
        }
    BITGRAD_CHECK(end != size, path << ": no zip end-of-central-directory record: the file is truncated or not a zip");
    uint64_t count = le(d + end + 10, 2), cd_size = le(d + end + 12, 4), cd_offset = le(d + end + 16, 4);
    bool split = le(d + end + 4, 2) != 0 || le(d + end + 6, 2) != 0 || le(d + end + 8, 2) != count;
    uint64_t cd_limit = end;  // where the central directory must end
    if (end >= 20 && le(d + end - 20, 4) == kZip64LocatorSig) {
        const uint8_t* loc = d + end - 20;
        const uint64_t z = le(loc + 8, 8);
        BITGRAD_CHECK(z <= end - 20 && end - 20 - z >= 56 && le(d + z, 4) == kZip64EndSig,
                      path << ": the ZIP64 end-of-central-directory record (offset " << z << ") is missing or damaged");
        const uint64_t record = le(d + z + 4, 8);
        BITGRAD_CHECK(record >= 44 && record <= end - 20 - z - 12,
                      path << ": ZIP64 end-of-central-directory record of " << record << " bytes does not fit");
        split = split || le(loc + 4, 4) != 0 || le(loc + 16, 4) != 1 || le(d + z + 16, 4) != 0 ||
                le(d + z + 20, 4) != 0 || le(d + z + 24, 8) != le(d + z + 32, 8);
        count = le(d + z + 32, 8);
        cd_size = le(d + z + 40, 8);
        cd_offset = le(d + z + 48, 8);
        cd_limit = z;
    } else {
        BITGRAD_CHECK(count != 0xffff && cd_size != 0xffffffff && cd_offset != 0xffffffff,
                      path << ": the end-of-central-directory record points to ZIP64 records, but there are none");
    }
    BITGRAD_CHECK(!split, path << ": a split (multi-disk) zip archive");
    BITGRAD_CHECK(cd_offset <= cd_limit && cd_size == cd_limit - cd_offset,
                  path << ": the central directory (offset " << cd_offset << ", " << cd_size
                       << " bytes) does not end where the end records begin (offset " << cd_limit
                       << "): the file is truncated or damaged");
    BITGRAD_CHECK(count <= cd_size / 46,
                  path << ": " << count << " entries cannot fit a " << cd_size << "-byte central directory");
    std::vector<ZipEntry> entries;
    entries.reserve(std::size_t(count));
    std::set<std::string> names;
    const uint64_t cd_end = cd_offset + cd_size;
    for (uint64_t i = 0, q = cd_offset; i < count; ++i) {
        BITGRAD_CHECK(cd_end - q >= 46 && le(d + q, 4) == kZipCentralSig,
                      path << ": central directory entry " << i << " (offset " << q << ") is damaged");
        const uint64_t flags = le(d + q + 8, 2), method = le(d + q + 10, 2), name_len = le(d + q + 28, 2),
                       extra_len = le(d + q + 30, 2), comment_len = le(d + q + 32, 2);
        BITGRAD_CHECK(cd_end - q - 46 >= name_len + extra_len + comment_len,
                      path << ": central directory entry " << i << " runs past the directory's end");
        ZipEntry e;
        e.name.assign(reinterpret_cast<const char*>(d + q + 46), std::size_t(name_len));
        const std::string shown = printable(e.name);
        e.crc = uint32_t(le(d + q + 16, 4));
        uint64_t comp = le(d + q + 20, 4), uncomp = le(d + q + 24, 4), header = le(d + q + 42, 4);
        // A field of all ones is in the ZIP64 extra field (id 1), in the order uncompressed, compressed, offset.
        const bool wants64 = comp == 0xffffffff || uncomp == 0xffffffff || header == 0xffffffff;
        bool has64 = false;
        for (uint64_t x = q + 46 + name_len, x_end = x + extra_len; x_end - x >= 4;) {
            const uint64_t id = le(d + x, 2), n = le(d + x + 2, 2);
            BITGRAD_CHECK(n <= x_end - x - 4, path << ": entry " << shown << ": an extra field runs past its header");
            if (id == 1) {
                has64 = true;
                uint64_t f = x + 4, left = n;
                for (uint64_t* v : {&uncomp, &comp, &header}) {
                    if (*v != 0xffffffff) continue;
                    BITGRAD_CHECK(left >= 8, path << ": entry " << shown << ": ZIP64 extra field too short");
                    *v = le(d + f, 8);
                    f += 8;
                    left -= 8;
                }
            }
            x += 4 + n;
        }
        BITGRAD_CHECK(has64 || !wants64, path << ": entry " << shown << ": sizes point to a missing ZIP64 extra field");
        BITGRAD_CHECK(!(flags & 1), path << ": entry " << shown << " is encrypted");
        BITGRAD_CHECK(method == 0, path << ": entry " << shown << " is compressed (method " << method
                                        << (method == 8 ? ", deflate" : "")
                                        << "); torch.save stores entries uncompressed (method 0), the only method "
                                           "read here");
        BITGRAD_CHECK(comp == uncomp, path << ": entry " << shown << " is stored but its compressed size " << comp
                                           << " differs from its size " << uncomp);
        BITGRAD_CHECK(header <= cd_offset && cd_offset - header >= 30 && le(d + header, 4) == kZipLocalSig,
                      path << ": entry " << shown << ": no local header at offset " << header);
        const uint64_t local_name = le(d + header + 26, 2), local_extra = le(d + header + 28, 2);
        BITGRAD_CHECK(le(d + header + 8, 2) == 0 && cd_offset - header - 30 >= local_name + local_extra &&
                          local_name == name_len && std::memcmp(d + header + 30, d + q + 46, name_len) == 0,
                      path << ": entry " << shown << ": the local header (offset " << header
                           << ") disagrees with the central directory");
        e.header = header;
        e.data = header + 30 + local_name + local_extra;
        e.size = uncomp;
        BITGRAD_CHECK(e.size <= cd_offset - e.data, path << ": entry " << shown << ": " << e.size << " bytes at offset "
                                                         << e.data << " run past the central directory (offset "
                                                         << cd_offset << "): the file is truncated or damaged");
        BITGRAD_CHECK(names.insert(e.name).second, path << ": entry " << shown << " appears twice");
        entries.push_back(std::move(e));
        q += 46 + name_len + extra_len + comment_len;
    }
    std::vector<const ZipEntry*> by_offset;
    for (const auto& e : entries) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const ZipEntry* a, const ZipEntry* b) { return a->header < b->header; });
    for (std::size_t i = 1; i < by_offset.size(); ++i)
        BITGRAD_CHECK(by_offset[i - 1]->data + by_offset[i - 1]->size <= by_offset[i]->header,
                      path << ": entries " << printable(by_offset[i - 1]->name) << " and "
                           << printable(by_offset[i]->name) << " overlap");
    return entries;
}

// Writes stored zip entries the way torch's miniz writer does (header comment).
class TorchZipWriter {
public:
    TorchZipWriter(int fd, const std::string& tmp, std::string archive)
        : fd_(fd), tmp_(tmp), prefix_(std::move(archive) + "/") {}

    void add(const std::string& name, const void* data, uint64_t size) {
        const std::string full = prefix_ + name;
        const uint32_t crc = crc32(data, size);
        const uint64_t header = pos_;
        const bool big = size >= 0xffffffff, far = header >= 0xffffffff;
        std::string zip64;  // id 1: [size, size] if big, [offset] if far
        if (big || far) {
            put_le(zip64, 1, 2);
            put_le(zip64, (big ? 16 : 0) + (far ? 8 : 0), 2);
            if (big) {
                put_le(zip64, size, 8);
                put_le(zip64, size, 8);
            }
            if (far) put_le(zip64, header, 8);
        }
        const uint64_t start = header + 30 + full.size() + 4 + zip64.size();
        const uint64_t pad = (64 - start % 64) % 64;              // the bytes begin at a multiple of 64
        const uint64_t flags = 0x0800 | (size > 0 ? 0x0008 : 0);  // UTF-8 name; data descriptor
        std::string local;
        put_le(local, kZipLocalSig, 4);
        put_le(local, 0, 2);  // version needed
        put_le(local, flags, 2);
        local.append(18, '\0');  // method, time, date, CRC, sizes: 0 (the descriptor has them)
        put_le(local, full.size(), 2);
        put_le(local, zip64.size() + 4 + pad, 2);
        local += full + zip64 + "FB";
        put_le(local, pad, 2);
        local.append(std::size_t(pad), 'Z');
        write(local.data(), local.size());
        write(data, size);
        if (size > 0) {
            std::string descriptor;
            put_le(descriptor, kZipDescriptorSig, 4);
            put_le(descriptor, crc, 4);
            put_le(descriptor, size, zip64.empty() ? 4 : 8);
            put_le(descriptor, size, zip64.empty() ? 4 : 8);
            write(descriptor.data(), descriptor.size());
        }
        put_le(central_, kZipCentralSig, 4);
        put_le(central_, 0, 4);  // version made by, needed
        put_le(central_, flags, 2);
        put_le(central_, 0, 6);  // method, time, date
        put_le(central_, crc, 4);
        put_le(central_, std::min<uint64_t>(size, 0xffffffff), 4);
        put_le(central_, std::min<uint64_t>(size, 0xffffffff), 4);
        put_le(central_, full.size(), 2);
        put_le(central_, zip64.size(), 2);
        central_.append(10, '\0');  // comment length, disk, attributes
        put_le(central_, std::min<uint64_t>(header, 0xffffffff), 4);
        central_ += full + zip64;
        ++count_;
    }

    void finish() {
        const uint64_t cd_offset = pos_, cd_size = central_.size();
        std::string end = central_;
        put_le(end, kZip64EndSig, 4);
        put_le(end, 44, 8);
        put_le(end, 0x031e, 2);  // made by: Unix, 3.0
        put_le(end, 0x002d, 2);  // needed: 4.5 (ZIP64)
        put_le(end, 0, 8);       // disks
        put_le(end, count_, 8);
        put_le(end, count_, 8);
        put_le(end, cd_size, 8);
        put_le(end, cd_offset, 8);
        put_le(end, kZip64LocatorSig, 4);
        put_le(end, 0, 4);
        put_le(end, cd_offset + cd_size, 8);
        put_le(end, 1, 4);
        put_le(end, kZipEndSig, 4);
        put_le(end, 0, 4);
        put_le(end, std::min<uint64_t>(count_, 0xffff), 2);
        put_le(end, std::min<uint64_t>(count_, 0xffff), 2);
        put_le(end, std::min<uint64_t>(cd_size, 0xffffffff), 4);
        put_le(end, std::min<uint64_t>(cd_offset, 0xffffffff), 4);
        put_le(end, 0, 2);
        write(end.data(), end.size());
    }

private:
    void write(const void* data, uint64_t n) {
        if (n > 0) write_all(fd_, data, std::size_t(n), tmp_);
        pos_ += n;
    }
    int fd_;
    const std::string& tmp_;
    std::string prefix_, central_;
    uint64_t pos_ = 0, count_ = 0;
};

}  // namespace bitgrad::io::detail

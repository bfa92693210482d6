#!/usr/bin/env python3
"""Marks one version reference of an ELF shared library weak (VER_FLG_WEAK), in place.

TorchSharp 0.107's libLibTorchSharp.so asks libstdc++ for GLIBCXX_3.4.32 (GCC 13) for a single
symbol, std::ios_base_library_init(), which it never calls; Debian 12's libstdc++ ends at
GLIBCXX_3.4.30, so the loader refuses the library. glibc's loader only reports a missing version
whose reference is weak, and binds the (now unversioned, see patchelf --clear-symbol-version)
symbol lazily, that is never. Usage: weaken_version.py LIB VERSION
"""
import struct
import sys

path, version = sys.argv[1], sys.argv[2].encode()
data = bytearray(open(path, "rb").read())
assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "expects a 64-bit little-endian ELF"
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)


def section(i):
    name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
        "<IIQQQQIIQQ", data, shoff + i * shentsize)
    return typ, off, size, link, info


SHT_GNU_VERNEED = 0x6FFFFFFE
hits = 0
for i in range(shnum):
    typ, off, size, link, count = section(i)
    if typ != SHT_GNU_VERNEED:
        continue
    _, stroff, _, _, _ = section(link)

    def string(o):
        end = data.index(0, stroff + o)
        return bytes(data[stroff + o:end])

    need = off
    for _ in range(count):
        vn_version, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from("<HHIII", data, need)
        aux = need + vn_aux
        for _ in range(vn_cnt):
            vna_hash, vna_flags, vna_other, vna_name, vna_next = struct.unpack_from("<IHHII", data, aux)
            if string(vna_name) == version:
                struct.pack_into("<H", data, aux + 4, vna_flags | 0x2)
                hits += 1
            aux += vna_next
        if vn_next == 0:
            break
        need += vn_next

if hits == 0:
    sys.exit(f"{path}: no reference to version {version.decode()}")
open(path, "wb").write(data)
print(f"{path}: {version.decode()} marked weak ({hits} reference)")

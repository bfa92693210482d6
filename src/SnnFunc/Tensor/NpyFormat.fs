/// Reading and writing NumPy's .npy and .npz files as raw (shape, Storage) pairs.
///
/// The .npy layout (NEP 1): the magic bytes 0x93 "NUMPY", a major and a minor version byte, the
/// header length (uint16 little-endian in version 1.0, uint32 in 2.0 and 3.0), then the header: a
/// Python dict literal with the keys 'descr', 'fortran_order' and 'shape', padded with spaces and a
/// final newline so that the data starts at a multiple of 64 bytes; then the raw element data.
///
/// Reading accepts versions 1.0, 2.0 and 3.0; float16/32/64 in either byte order; bool and all
/// integer types of 1 to 8 bytes in either byte order; C or Fortran order. float32 and float16 load
/// as Float32, float64 as Float64, bool as Float64 0/1 masks, and integers as Int32: a value that
/// does not fit int32 (from uint32, int64 or uint64 files) raises an error naming it rather than
/// wrapping silently. Writing always produces little-endian '&lt;f4' / '&lt;f8' / '&lt;i4' in C
/// order, byte-for-byte as NumPy's np.save writes it.
///
/// Reading a .npz checks every member's length and CRC-32 (System.IO.Compression checks neither), so
/// a damaged checkpoint is an error naming the file and the member rather than wrong numbers.
module SnnFunc.NpyFormat

open System
open System.Buffers.Binary
open System.Collections.Generic
open System.IO
open System.IO.Compression
open System.Runtime.InteropServices
open System.Text

// ---------------------------------------------------------------------------------------------
// Error helpers
// ---------------------------------------------------------------------------------------------

let private where (source: string option) =
    match source with
    | Some s -> $"%s{s}: "
    | None -> ""

let private bad (source: string option) (msg: string) : 'a =
    raise (InvalidDataException(where source + msg))

let private shapeText (shape: int[]) = "[" + String.Join("; ", shape) + "]"

// ---------------------------------------------------------------------------------------------
// A small parser for the Python literal that forms the header
// ---------------------------------------------------------------------------------------------

type private PyValue =
    | PStr of string
    | PInt of int64
    | PBool of bool
    | PNone
    | PTuple of PyValue list
    | PList of PyValue list
    | PDict of (PyValue * PyValue) list

type private HeaderParser(text: string, source: string option) =
    let mutable pos = 0

    member private _.Fail(msg: string) : 'a =
        bad source $"malformed .npy header (%s{msg} at character %d{pos}): %s{text.TrimEnd()}"

    member private _.SkipSpace() =
        while pos < text.Length && Char.IsWhiteSpace text[pos] do
            pos <- pos + 1

    member p.Expect(c: char) =
        p.SkipSpace()

        if pos < text.Length && text[pos] = c then
            pos <- pos + 1
        else
            p.Fail $"expected '%c{c}'"

    member p.AtEnd =
        p.SkipSpace()
        pos >= text.Length

    /// Parses comma-separated values up to `close`, allowing a trailing comma.
    member private p.Items(close: char, item: unit -> 'T) : 'T list * bool =
        let items = ResizeArray<'T>()
        let mutable trailingComma = false
        let mutable fin = false

        while not fin do
            p.SkipSpace()

            if pos < text.Length && text[pos] = close then
                pos <- pos + 1
                fin <- true
            else
                items.Add(item ())
                trailingComma <- false
                p.SkipSpace()

                if pos < text.Length && text[pos] = ',' then
                    pos <- pos + 1
                    trailingComma <- true
                elif pos < text.Length && text[pos] = close then
                    ()
                else
                    p.Fail $"expected ',' or '%c{close}'"

        List.ofSeq items, trailingComma

    member p.Value() : PyValue =
        p.SkipSpace()

        if pos >= text.Length then
            p.Fail "unexpected end"

        match text[pos] with
        | '{' ->
            pos <- pos + 1

            let pairs, _ =
                p.Items(
                    '}',
                    fun () ->
                        let k = p.Value()
                        p.Expect ':'
                        let v = p.Value()
                        k, v
                )

            PDict pairs
        | '(' ->
            pos <- pos + 1
            let items, trailing = p.Items(')', p.Value)
            // "(3)" is just a parenthesised 3 in Python; "(3,)" is a tuple.
            match items with
            | [ single ] when not trailing -> single
            | _ -> PTuple items
        | '[' ->
            pos <- pos + 1
            PList(fst (p.Items(']', p.Value)))
        | '\''
        | '"' as quote ->
            pos <- pos + 1
            let sb = StringBuilder()

            while pos < text.Length && text[pos] <> quote do
                if text[pos] = '\\' && pos + 1 < text.Length then
                    pos <- pos + 1

                sb.Append(text[pos]) |> ignore
                pos <- pos + 1

            if pos >= text.Length then
                p.Fail "unterminated string"

            pos <- pos + 1
            PStr(sb.ToString())
        | c when Char.IsDigit c || c = '-' || c = '+' ->
            let start = pos
            pos <- pos + 1

            while pos < text.Length && Char.IsDigit text[pos] do
                pos <- pos + 1

            let digits = text.Substring(start, pos - start)
            // Python 2 era files may write long integers as "3L".
            if pos < text.Length && (text[pos] = 'L' || text[pos] = 'l') then
                pos <- pos + 1

            match Int64.TryParse(digits, Globalization.NumberStyles.AllowLeadingSign, Globalization.CultureInfo.InvariantCulture) with
            | true, v -> PInt v
            | _ -> p.Fail $"bad integer '%s{digits}'"
        | c when Char.IsLetter c ->
            let start = pos

            while pos < text.Length && (Char.IsLetterOrDigit text[pos] || text[pos] = '_') do
                pos <- pos + 1

            match text.Substring(start, pos - start) with
            | "True" -> PBool true
            | "False" -> PBool false
            | "None" -> PNone
            | w -> p.Fail $"unexpected word '%s{w}'"
        | c -> p.Fail $"unexpected character '%c{c}'"

// ---------------------------------------------------------------------------------------------
// Element types found in files
// ---------------------------------------------------------------------------------------------

type private Kind =
    | KFloat
    | KInt
    | KUInt
    | KBool

/// A supported on-disk element type.
type private FileType =
    {
        Kind: Kind
        Size: int
        BigEndian: bool
        Descr: string
    }

let private friendlyName (descr: string) =
    let body = descr.TrimStart('<', '>', '|', '=')

    let kind, size =
        if body.Length = 0 then
            "", 0
        else
            match Int32.TryParse(body.Substring 1) with
            | true, n -> body.Substring(0, 1), n
            | _ -> body, 0

    match kind, size with
    | "c", n when n > 0 -> $"complex%d{n * 8}"
    | "f", n when n > 0 -> $"float%d{n * 8}"
    | "O", _ -> "object"
    | "U", _ -> "unicode string"
    | "S", _
    | "a", _ -> "byte string"
    | "V", _ -> "void / raw bytes"
    | "M", _ -> "datetime64"
    | "m", _ -> "timedelta64"
    | _ -> "unknown type"

let private parseDescr (source: string option) (descr: PyValue) : FileType =
    match descr with
    | PStr d when d.Length >= 2 ->
        let order = d[0]
        let hasOrder = order = '<' || order = '>' || order = '|' || order = '='
        let body = if hasOrder then d.Substring 1 else d

        let bigEndian =
            match order with
            | '>' -> true
            | '=' -> not BitConverter.IsLittleEndian
            | _ -> false

        let ft k s =
            {
                Kind = k
                Size = s
                BigEndian = bigEndian && s > 1
                Descr = d
            }

        match body with
        | "f2" -> ft KFloat 2
        | "f4" -> ft KFloat 4
        | "f8" -> ft KFloat 8
        | "b1"
        | "?" -> ft KBool 1
        | "i1" -> ft KInt 1
        | "i2" -> ft KInt 2
        | "i4" -> ft KInt 4
        | "i8" -> ft KInt 8
        | "u1" -> ft KUInt 1
        | "u2" -> ft KUInt 2
        | "u4" -> ft KUInt 4
        | "u8" -> ft KUInt 8
        | _ -> bad source $"unsupported dtype '%s{d}' (%s{friendlyName d}); only bool, integer and float16/32/64 arrays can be read"
    | PStr d -> bad source $"unsupported dtype '%s{d}'"
    | PList _ -> bad source "unsupported dtype: structured (record) arrays cannot be read"
    | _ -> bad source "malformed .npy header: 'descr' is not a string"

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

let private magic = [| 0x93uy; byte 'N'; byte 'U'; byte 'M'; byte 'P'; byte 'Y' |]

/// Reads up to `count` bytes; returns how many were read (less only at end of stream).
let private readAtMost (stream: Stream) (buffer: Span<byte>) =
    let mutable total = 0
    let mutable fin = false

    while not fin && total < buffer.Length do
        let n = stream.Read(buffer.Slice total)

        if n = 0 then fin <- true else total <- total + n

    total


/// Converts the raw little/big-endian bytes of one element type to a Storage.
let private decode (source: string option) (ft: FileType) (count: int) (data: byte[]) : Storage =
    let sz = ft.Size
    let be = ft.BigEndian

    let u16 i =
        let s = ReadOnlySpan(data, i * sz, 2)

        if be then
            BinaryPrimitives.ReadUInt16BigEndian s
        else
            BinaryPrimitives.ReadUInt16LittleEndian s

    let u32 i =
        let s = ReadOnlySpan(data, i * sz, 4)

        if be then
            BinaryPrimitives.ReadUInt32BigEndian s
        else
            BinaryPrimitives.ReadUInt32LittleEndian s

    let u64 i =
        let s = ReadOnlySpan(data, i * sz, 8)

        if be then
            BinaryPrimitives.ReadUInt64BigEndian s
        else
            BinaryPrimitives.ReadUInt64LittleEndian s

    // Integers load as Int32 (exact); wider types must hold int32 values.
    let fitting (v: int64) i =
        if v > int64 Int32.MaxValue || v < int64 Int32.MinValue then
            bad source $"integer %d{v} at flat index %d{i} does not fit int32, the integer dtype of SnnFunc (dtype '%s{ft.Descr}')"

        int v

    match ft.Kind, sz with
    | KFloat, 4 ->
        let out = Array.zeroCreate<float32> count

        if not be && BitConverter.IsLittleEndian then
            Buffer.BlockCopy(data, 0, out, 0, count * 4)
        else
            for i in 0 .. count - 1 do
                out[i] <- BitConverter.UInt32BitsToSingle(u32 i)

        Storage.F32 out
    | KFloat, 8 ->
        let out = Array.zeroCreate<float> count

        if not be && BitConverter.IsLittleEndian then
            Buffer.BlockCopy(data, 0, out, 0, count * 8)
        else
            for i in 0 .. count - 1 do
                out[i] <- BitConverter.UInt64BitsToDouble(u64 i)

        Storage.F64 out
    | KFloat, 2 -> Storage.F32(Array.init count (fun i -> float32 (BitConverter.UInt16BitsToHalf(u16 i))))
    | KBool, _ -> Storage.F64(Array.init count (fun i -> if data[i] <> 0uy then 1.0 else 0.0))
    | KInt, 1 -> Storage.I32(Array.init count (fun i -> int (sbyte data[i])))
    | KUInt, 1 -> Storage.I32(Array.init count (fun i -> int data[i]))
    | KInt, 2 -> Storage.I32(Array.init count (fun i -> int (int16 (u16 i))))
    | KUInt, 2 -> Storage.I32(Array.init count (fun i -> int (u16 i)))
    | KInt, 4 -> Storage.I32(Array.init count (fun i -> int32 (u32 i)))
    | KUInt, 4 -> Storage.I32(Array.init count (fun i -> fitting (int64 (u32 i)) i))
    | KInt, 8 -> Storage.I32(Array.init count (fun i -> fitting (int64 (u64 i)) i))
    | KUInt, 8 ->
        Storage.I32(
            Array.init count (fun i ->
                let v = u64 i

                if v > uint64 Int32.MaxValue then
                    bad source $"integer %d{v} at flat index %d{i} does not fit int32, the integer dtype of SnnFunc (dtype '%s{ft.Descr}')"

                int v)
        )
    | _ -> bad source $"unsupported dtype '%s{ft.Descr}'"

/// Reorders a column-major (Fortran) buffer of the given shape to row-major.
let private fortranToC (shape: int[]) (src: 'T[]) : 'T[] =
    let rank = shape.Length

    if rank <= 1 || src.Length = 0 then
        src
    else
        let dst = Array.zeroCreate<'T> src.Length
        // Row-major strides; walk the source in column-major order (axis 0 fastest).
        let strides = Array.zeroCreate<int> rank
        strides[rank - 1] <- 1

        for a in rank - 2 .. -1 .. 0 do
            strides[a] <- strides[a + 1] * shape[a + 1]

        let idx = Array.zeroCreate<int> rank
        let mutable off = 0

        for k in 0 .. src.Length - 1 do
            dst[off] <- src[k]
            // Advance the odometer, axis 0 fastest.
            let mutable a = 0
            let mutable carry = true

            while carry && a < rank do
                idx[a] <- idx[a] + 1
                off <- off + strides[a]

                if idx[a] = shape[a] then
                    off <- off - strides[a] * shape[a]
                    idx[a] <- 0
                    a <- a + 1
                else
                    carry <- false

        dst

let private readCore (source: string option) (stream: Stream) : int[] * Storage =
    let pre = Array.zeroCreate<byte> 8
    let got = readAtMost stream (Span pre)

    let magicOk =
        Span<byte>(pre, 0, min got 6).SequenceEqual(ReadOnlySpan(magic, 0, min got 6))

    if got = 0 || not magicOk then
        bad source "not a .npy file (bad magic bytes; expected \\x93NUMPY)"

    if got < 8 then
        bad source $"truncated .npy header: only %d{got} bytes"

    let major, minor = pre[6], pre[7]

    let lenBytes, encoding =
        match major with
        | 1uy -> 2, Encoding.Latin1
        | 2uy -> 4, Encoding.Latin1
        | 3uy -> 4, Encoding.UTF8
        | _ -> bad source $"unsupported .npy format version %d{major}.%d{minor} (supported: 1.0, 2.0, 3.0)"

    let lb = Array.zeroCreate<byte> lenBytes

    if readAtMost stream (Span lb) < lenBytes then
        bad source "truncated .npy header: missing header length"

    let headerLen =
        if lenBytes = 2 then
            int (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan lb))
        else
            let v = BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan lb)

            if v > uint32 (100 * 1024 * 1024) then
                bad source $"implausible .npy header length %d{v}"

            int v

    let hb = Array.zeroCreate<byte> headerLen
    let gotHeader = readAtMost stream (Span hb)

    if gotHeader < headerLen then
        bad source $"truncated .npy header: expected %d{headerLen} header bytes, found %d{gotHeader}"

    let text = encoding.GetString hb
    let parser = HeaderParser(text, source)

    let dict =
        match parser.Value() with
        | PDict pairs when parser.AtEnd -> pairs
        | _ -> bad source $"malformed .npy header (not a single dict literal): %s{text.TrimEnd()}"

    let lookup key =
        dict
        |> List.tryPick (fun (k, v) -> if k = PStr key then Some v else None)
        |> Option.defaultWith (fun () -> bad source $"malformed .npy header: missing key '%s{key}': %s{text.TrimEnd()}")

    let ft = parseDescr source (lookup "descr")

    let fortran =
        match lookup "fortran_order" with
        | PBool b -> b
        | _ -> bad source "malformed .npy header: 'fortran_order' is not True or False"

    let shape =
        match lookup "shape" with
        | PTuple dims ->
            dims
            |> List.map (function
                | PInt d when d >= 0L && d <= int64 Int32.MaxValue -> int d
                | PInt d -> bad source $"invalid dimension %d{d} in .npy shape"
                | _ -> bad source "malformed .npy header: 'shape' must be a tuple of integers")
            |> Array.ofList
        | _ -> bad source "malformed .npy header: 'shape' must be a tuple of integers"

    let count =
        let c = shape |> Array.fold (fun acc d -> acc * int64 d) 1L

        if c > int64 Array.MaxLength then
            bad source $"array of shape %s{shapeText shape} has %d{c} elements, more than a .NET array can hold"

        int c

    let nbytes = int64 count * int64 ft.Size

    if nbytes > int64 Array.MaxLength then
        bad source $"array of shape %s{shapeText shape} %s{friendlyName ft.Descr} is too large to load (%d{nbytes} bytes)"

    let nbytes = int nbytes

    let dataDescr () =
        let name =
            match ft.Kind with
            | KBool -> "bool"
            | KInt -> $"int%d{ft.Size * 8}"
            | KUInt -> $"uint%d{ft.Size * 8}"
            | KFloat -> $"float%d{ft.Size * 8}"

        $"shape %s{shapeText shape} %s{name}"

    if stream.CanSeek then
        let remaining = stream.Length - stream.Position

        if remaining < int64 nbytes then
            bad source $"truncated .npy data: expected %d{nbytes} bytes of data for %s{dataDescr ()}, found %d{remaining}"

    let data = Array.zeroCreate<byte> nbytes
    let gotData = readAtMost stream (Span data)

    if gotData < nbytes then
        bad source $"truncated .npy data: expected %d{nbytes} bytes of data for %s{dataDescr ()}, found %d{gotData}"

    let storage = decode source ft count data

    let storage =
        if fortran then
            match storage with
            | Storage.F32 a -> Storage.F32(fortranToC shape a)
            | Storage.F64 a -> Storage.F64(fortranToC shape a)
            | Storage.I32 a -> Storage.I32(fortranToC shape a)
        else
            storage

    shape, storage

/// Reads one .npy array from the stream (which is left positioned just after the data).
/// Returns the shape (empty for a scalar) and the row-major element buffer.
let read (stream: Stream) : int[] * Storage = readCore None stream

/// Reads a .npy file. Errors name the file.
let readFile (path: string) : int[] * Storage =
    use fs =
        new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 <<< 16)

    readCore (Some path) fs

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

let private checkShape (fn: string) (shape: int[]) (storage: Storage) =
    if isNull (box shape) then
        nullArg "shape"

    if shape |> Array.exists (fun d -> d < 0) then
        invalidArg "shape" $"%s{fn}: shape %s{shapeText shape} has a negative dimension"

    let count = shape |> Array.fold (fun acc d -> acc * int64 d) 1L

    if count <> int64 storage.Length then
        invalidArg "storage" $"%s{fn}: shape %s{shapeText shape} has %d{count} elements but the storage holds %d{storage.Length}"

/// The header bytes (magic through the final newline) NumPy writes for a C-order array.
let private headerBytes (shape: int[]) (dtype: DType) : byte[] =
    let descr =
        match dtype with
        | Float32 -> "<f4"
        | Float64 -> "<f8"
        | Int32 -> "<i4"

    // Python's repr of a tuple: "()", "(3,)", "(3, 4)".
    let shapeRepr =
        match shape.Length with
        | 0 -> "()"
        | 1 -> $"(%d{shape[0]},)"
        | _ -> "(" + String.Join(", ", shape) + ")"

    let dict =
        $"{{'descr': '%s{descr}', 'fortran_order': False, 'shape': %s{shapeRepr}, }}"
    // NumPy leaves room for the first axis to grow to 21 digits, so the header can be rewritten in place.
    let growth =
        if shape.Length > 0 then
            21 - (string shape[0]).Length
        else
            0

    let body = dict + String(' ', max 0 growth)
    let hlen = body.Length + 1 // + newline

    let build (lenBytes: int) (major: byte) =
        let padlen = 64 - ((6 + 2 + lenBytes + hlen) % 64)
        let total = 6 + 2 + lenBytes + hlen + padlen
        let out = Array.zeroCreate<byte> total
        Array.blit magic 0 out 0 6
        out[6] <- major
        out[7] <- 0uy

        if lenBytes = 2 then
            BinaryPrimitives.WriteUInt16LittleEndian(Span(out, 8, 2), uint16 (hlen + padlen))
        else
            BinaryPrimitives.WriteUInt32LittleEndian(Span(out, 8, 4), uint32 (hlen + padlen))

        let start = 8 + lenBytes
        Encoding.ASCII.GetBytes(body, 0, body.Length, out, start) |> ignore

        for i in start + body.Length .. total - 2 do
            out[i] <- byte ' '

        out[total - 1] <- byte '\n'
        out

    // Version 1.0 stores the header length in 16 bits; fall back to 2.0 when it does not fit.
    let padded1 = hlen + (64 - ((10 + hlen) % 64))

    if padded1 <= int UInt16.MaxValue then
        build 2 1uy
    else
        build 4 2uy

/// The elements' bytes, little-endian: as they are in memory on a little-endian host, byte-swapped
/// element by element otherwise.
let private writeLittleEndian<'T when 'T: struct and 'T :> ValueType and 'T: (new: unit -> 'T)> (stream: Stream) (a: 'T[]) =
    let bytes = MemoryMarshal.AsBytes(ReadOnlySpan a)

    if BitConverter.IsLittleEndian then
        stream.Write bytes
    else
        let size = Runtime.InteropServices.Marshal.SizeOf<'T>()
        let swapped = bytes.ToArray()

        for i in 0 .. a.Length - 1 do
            Array.Reverse(swapped, i * size, size)

        stream.Write(swapped, 0, swapped.Length)

let private writeData (stream: Stream) (storage: Storage) =
    match storage with
    | Storage.F32 a -> writeLittleEndian stream a
    | Storage.F64 a -> writeLittleEndian stream a
    | Storage.I32 a -> writeLittleEndian stream a

/// Writes one array in .npy format (version 1.0, or 2.0 if the header needs it), little-endian,
/// C order. The shape's element count must equal the storage length; an empty shape is a scalar.
let write (stream: Stream) (shape: int[]) (storage: Storage) : unit =
    checkShape "NpyFormat.write" shape storage
    stream.Write(headerBytes shape storage.DType)
    writeData stream storage

/// Writes to `path` via a temporary file in the same folder that is then moved over the target,
/// so a failure part-way never destroys an existing file. I/O errors name the target and its
/// folder, not the temporary file (which the caller never asked for). Internal, not private:
/// NirFile saves NIR files the same way.
let internal atomicWrite (op: string) (path: string) (body: Stream -> unit) =
    if String.IsNullOrWhiteSpace path then
        invalidArg "path" $"%s{op}: the file path is empty"

    let full = Path.GetFullPath path
    let dir = Path.GetDirectoryName full
    let unique = Guid.NewGuid().ToString "N"
    let tmp = Path.Combine(dir, $".%s{Path.GetFileName full}.%s{unique}.tmp")

    try
        do
            // ReadWrite: PureHDF (NirFile) reads back what it has written while writing.
            use fs =
                new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 <<< 16)

            body fs
            fs.Flush true

        File.Move(tmp, full, true)
    with e ->
        try
            if File.Exists tmp then
                File.Delete tmp
        with _ ->
            ()

        match e with
        | :? DirectoryNotFoundException ->
            raise (DirectoryNotFoundException($"%s{op}: cannot save '%s{full}': the folder '%s{dir}' does not exist", e))
        | :? UnauthorizedAccessException ->
            raise (UnauthorizedAccessException($"%s{op}: cannot save '%s{full}': no permission to write in the folder '%s{dir}'", e))
        | :? IOException -> raise (IOException($"%s{op}: cannot save '%s{full}': %s{e.Message}", e))
        | _ -> reraise ()

/// Writes a .npy file atomically (see `write`). The path is used exactly as given; unlike
/// np.save no ".npy" extension is appended.
let writeFile (path: string) (shape: int[]) (storage: Storage) : unit =
    checkShape "NpyFormat.writeFile" shape storage
    atomicWrite "NpyFormat.writeFile" path (fun s -> write s shape storage)

// ---------------------------------------------------------------------------------------------
// .npz archives
// ---------------------------------------------------------------------------------------------

/// Why ZipArchive cannot open a seekable stream: a file cut short — named by the member whose
/// data runs past its end, or else by its missing central directory (the index at the end) — or
/// no zip archive at all. Walks the local file headers from the start.
let private unopenable (source: string option) (stream: Stream) (origin: int64) (e: exn) : 'a =
    let notZip () =
        bad source $"not a .npz file (not a valid zip archive: %s{e.Message})"

    if not stream.CanSeek then
        notZip ()

    let length = stream.Length
    let header = Array.zeroCreate<byte> 30
    let mutable pos = origin
    let mutable last = None
    let mutable walking = true

    while walking do
        stream.Position <- pos

        if
            readAtMost stream (Span header) < 30
            || BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan header) <> 0x04034b50u
        then
            walking <- false
        else
            let flags = BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(header, 6, 2))
            let size = BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan(header, 18, 4))

            let nameLength =
                int (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(header, 26, 2)))

            let extraLength =
                int (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(header, 28, 2)))

            let nameBytes = Array.zeroCreate<byte> nameLength
            let name = Encoding.UTF8.GetString(nameBytes, 0, readAtMost stream (Span nameBytes))
            let dataEnd = pos + 30L + int64 nameLength + int64 extraLength + int64 size

            if dataEnd > length then
                bad source $"truncated .npz file: member '%s{name}' needs %d{dataEnd - origin} bytes but the file has %d{length - origin}"

            last <- Some name
            // Sizes written after the data (flag bit 3) or kept in a zip64 field: stop walking.
            walking <- flags &&& 8us = 0us && size <> UInt32.MaxValue
            pos <- dataEnd

    match last with
    | Some name ->
        bad
            source
            $"truncated .npz file: the central directory (the index at the end) is missing or cut short, after member '%s{name}' (%d{length - origin} bytes)"
    | None -> notZip ()

/// A member's bytes, read whole and checked against the length and CRC-32 that the archive records
/// (ZipArchive checks neither), so that a corrupt checkpoint fails instead of loading wrong numbers.
let private memberBytes (memberSource: string option) (entry: ZipArchiveEntry) : byte[] =
    if entry.Length > int64 Array.MaxLength then
        bad memberSource $"member of %d{entry.Length} bytes is too large to read"

    let data = Array.zeroCreate<byte> (int entry.Length)

    let got, more =
        try
            use es = entry.Open()
            let n = readAtMost es (Span data)
            n, n = data.Length && es.ReadByte() <> -1
        with
        | :? InvalidDataException as e -> bad memberSource $"corrupt member data (%s{e.Message})"
        | :? IOException as e -> bad memberSource $"corrupt or truncated member data (%s{e.Message})"

    if got < data.Length then
        bad memberSource $"truncated member: the archive records %d{data.Length} bytes, only %d{got} could be read"

    if more then
        bad memberSource $"corrupt member: it holds more than the %d{data.Length} bytes that the archive records"

    let crc = System.IO.Hashing.Crc32.HashToUInt32(ReadOnlySpan data)

    if crc <> entry.Crc32 then
        bad memberSource $"corrupt member: CRC-32 mismatch (the archive records 0x%08X{entry.Crc32}, the data gives 0x%08X{crc})"

    data

let private readNpzCore (source: string option) (stream: Stream) : (string * (int[] * Storage)) list =
    let origin = if stream.CanSeek then stream.Position else 0L

    let archive =
        try
            new ZipArchive(stream, ZipArchiveMode.Read, true)
        with :? InvalidDataException as e ->
            unopenable source stream origin e

    use archive = archive

    [
        for entry in archive.Entries do
            // Directory entries have an empty Name.
            if entry.Name <> "" then
                let full = entry.FullName

                if not (full.EndsWith(".npy", StringComparison.Ordinal)) then
                    bad source $"npz member '%s{full}' is not a .npy array"

                let name = full.Substring(0, full.Length - 4)
                let memberSource = Some(where source + full)

                let arr =
                    readCore memberSource (new MemoryStream(memberBytes memberSource entry, false))

                name, arr
    ]

/// Reads every array of a .npz archive (as written by np.savez or np.savez_compressed), in archive
/// order. Names are the member names without the ".npy" suffix.
let readNpz (stream: Stream) : (string * (int[] * Storage)) list = readNpzCore None stream

/// Reads a .npz file. Errors name the file and member.
let readNpzFile (path: string) : (string * (int[] * Storage)) list =
    use fs =
        new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 <<< 16)

    readNpzCore (Some path) fs

let private validateNpz (fn: string) (arrays: (string * int[] * Storage) list) =
    let seen = HashSet<string>()

    for name, shape, storage in arrays do
        if String.IsNullOrEmpty name then
            invalidArg "arrays" $"%s{fn}: array names must be non-empty"

        if not (seen.Add name) then
            invalidArg "arrays" $"%s{fn}: duplicate array name '%s{name}'"

        checkShape fn shape storage

let private writeNpzCore (compressed: bool) (stream: Stream) (arrays: (string * int[] * Storage) list) =
    use archive = new ZipArchive(stream, ZipArchiveMode.Create, true)

    let level =
        if compressed then
            CompressionLevel.Optimal
        else
            CompressionLevel.NoCompression

    for name, shape, storage in arrays do
        let entry = archive.CreateEntry(name + ".npy", level)
        use es = entry.Open()
        write es shape storage

/// Writes named arrays as a .npz archive. `compressed = false` stores members uncompressed like
/// np.savez; `true` deflates them like np.savez_compressed. Names must be distinct and non-empty.
let writeNpzWith (compressed: bool) (stream: Stream) (arrays: (string * int[] * Storage) seq) : unit =
    let arrays = List.ofSeq arrays
    validateNpz "NpyFormat.writeNpz" arrays
    writeNpzCore compressed stream arrays

/// Writes named arrays as an uncompressed .npz archive (like np.savez).
let writeNpz (stream: Stream) (arrays: (string * int[] * Storage) seq) : unit = writeNpzWith false stream arrays

/// Writes a .npz file atomically; `compressed` as in `writeNpzWith`.
let writeNpzFileWith (compressed: bool) (path: string) (arrays: (string * int[] * Storage) seq) : unit =
    let arrays = List.ofSeq arrays
    validateNpz "NpyFormat.writeNpzFile" arrays
    atomicWrite "NpyFormat.writeNpzFile" path (fun s -> writeNpzCore compressed s arrays)

/// Writes an uncompressed .npz file atomically.
let writeNpzFile (path: string) (arrays: (string * int[] * Storage) seq) : unit = writeNpzFileWith false path arrays

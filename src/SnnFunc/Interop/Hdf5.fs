/// The PureHDF calls the NIR readers and writer share: any numeric, boolean or string dataset or
/// attribute decoded by its stored type, datasets created with the reference writer's storage, and
/// a deflate filter that honours every zlib level.
module internal SnnFunc.Hdf5

open System
open System.Collections.Generic
open System.IO
open System.IO.Compression
open PureHDF
open PureHDF.Filters
open PureHDF.VOL.Native

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// The elements of a dataset or attribute, decoded by its stored type (row-major).
type Elements =
    | F32 of float32[]
    | F64 of float[]
    /// Any integer type, widened to int64 (uint64 values above Int64.MaxValue are an error).
    | Ints of int64[]
    /// h5py's numpy bool: an enum { FALSE = 0, TRUE = 1 } over one byte.
    | Bools of bool[]
    /// Fixed- or variable-length strings, ASCII or UTF-8.
    | Texts of string[]

    /// The HDF5 type as VALUES.json and the messages name it: "f32", "i64", "vlen-str", ...
    member e.Kind =
        match e with
        | F32 _ -> "f32"
        | F64 _ -> "f64"
        | Ints _ -> "integer"
        | Bools _ -> "bool"
        | Texts _ -> "string"

/// A decoded dataset or attribute: its shape ([] for a scalar dataspace) and elements.
type Value = { Shape: int[]; Elements: Elements }

/// Reads a whole dataset or attribute as 'T[] (PureHDF's two read methods share no interface).
type private IArrayReader =
    abstract Read<'T> : unit -> 'T[]

/// "Could not find filter 'lzf' with ID '32000'. ..." -> Some ("lzf", "32000").
let private missingFilter (message: string) =
    let m =
        Text.RegularExpressions.Regex.Match(message, "Could not find filter '([^']*)' with ID '([0-9]+)'")

    if m.Success then
        Some(m.Groups[1].Value, m.Groups[2].Value)
    else
        None

/// The innermost message of a PureHDF exception ("Filter pipeline failed." wraps the real one).
let rec private rootMessage (e: exn) =
    if isNull e.InnerException then
        e.Message
    else
        rootMessage e.InnerException

let private widen (convert: 'T -> int64) (read: unit -> 'T[]) = Ints(Array.map convert (read ()))

let private uint64ToInt64 (v: uint64) =
    if v > uint64 Int64.MaxValue then
        raise (OverflowException $"the value %d{v} does not fit int64")

    int64 v

/// Decodes by the stored type. `fail` raises the caller's error with a message about the object.
/// PureHDF reinterprets bytes when asked for the wrong element type (an int64 read as double gives
/// 5e-324), so the element type is always chosen from the stored class and size.
let private decode (fail: string -> exn) (typ: IH5DataType) (space: IH5Dataspace) (reader: IArrayReader) =
    let shape =
        match space.Type with
        | H5DataspaceType.Scalar -> [||]
        | H5DataspaceType.Simple ->
            space.Dimensions
            |> Array.map (fun d ->
                if d > uint64 Int32.MaxValue then
                    raise (fail $"dimension %d{d} is too large")

                int d)
        | other -> raise (fail $"has a %A{other} dataspace (no data)")

    let elements =
        try
            match typ.Class, typ.Size with
            | H5DataTypeClass.FloatingPoint, 4 -> F32(reader.Read<float32>())
            | H5DataTypeClass.FloatingPoint, 8 -> F64(reader.Read<float>())
            | H5DataTypeClass.FixedPoint, size ->
                match size, typ.FixedPoint.IsSigned with
                | 1, true -> widen int64 reader.Read<sbyte>
                | 1, false -> widen int64 reader.Read<byte>
                | 2, true -> widen int64 reader.Read<int16>
                | 2, false -> widen int64 reader.Read<uint16>
                | 4, true -> widen int64 reader.Read<int>
                | 4, false -> widen int64 reader.Read<uint32>
                | 8, true -> Ints(reader.Read<int64>())
                | 8, false -> widen uint64ToInt64 reader.Read<uint64>
                | _ -> raise (fail $"has an unsupported %d{size}-byte integer type")
            | H5DataTypeClass.Enumerated, 1 ->
                let members = typ.Enumeration.GetMembers<byte>()

                if members.Count = 2 && members.ContainsKey "FALSE" && members.ContainsKey "TRUE" then
                    Bools(reader.Read<bool>())
                else
                    raise (fail "is an enum other than numpy's bool {FALSE, TRUE}, which NIR does not use")
            // A variable-length string reports VariableLength (size 16), a fixed-length one String.
            | H5DataTypeClass.String, _
            | H5DataTypeClass.VariableLength, _ -> Texts(reader.Read<string>())
            | cls, size -> raise (fail $"has the unsupported HDF5 type %A{cls} (%d{size} bytes)")
        with
        | :? InvalidDataException -> reraise ()
        | e when (missingFilter (rootMessage e)).IsSome ->
            let name, id = (missingFilter (rootMessage e)).Value
            // h5py's "lzf" (ID 32000) is the one a NIR user meets: nir.write(..., compression="lzf").
            raise (
                fail
                    $"is compressed with HDF5 filter %s{id}: filter %s{name} is not supported (write the file with gzip or without compression)"
            )
        | :? OverflowException as e -> raise (fail e.Message)
        | e -> raise (fail $"cannot be read: %s{rootMessage e}")

    { Shape = shape; Elements = elements }

/// Reads a whole dataset. `fail` turns a message about the dataset into the caller's exception.
let readDataset (fail: string -> exn) (d: IH5Dataset) : Value =
    decode
        fail
        d.Type
        d.Space
        { new IArrayReader with
            member _.Read<'T>() = d.Read<'T[]>()
        }

/// Reads a whole attribute.
let readAttribute (fail: string -> exn) (a: IH5Attribute) : Value =
    decode
        fail
        a.Type
        a.Space
        { new IArrayReader with
            member _.Read<'T>() = a.Read<'T[]>()
        }

/// The datasets and groups directly inside a group, in file order (name order for h5py files).
let children (g: IH5Group) : (string * Choice<IH5Dataset, IH5Group>) list =
    [
        for c in g.Children() do
            match c with
            | :? IH5Dataset as d -> c.Name, Choice1Of2 d
            | :? IH5Group as sub -> c.Name, Choice2Of2 sub
            | _ -> () // committed datatypes and unresolved links carry no NIR content
    ]

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// HDF5's deflate filter (ID 1) at the level stored in its parameter. PureHDF's own deflate
/// filter compresses only at levels 0, 1 and 9, but the reference writer uses gzip level 4 (h5py's
/// default); .NET's ZLibStream takes any zlib level. Decompression is the same zlib stream, so
/// replacing PureHDF's registration changes nothing for reading.
type private DeflateAnyLevel() =
    interface IH5Filter with
        member _.FilterId = DeflateFilter.Id
        member _.Name = "deflate"

        member _.GetParameters(_, _, options) =
            match options.TryGetValue DeflateFilter.COMPRESSION_LEVEL with
            | true, (:? int as level) -> [| uint32 level |]
            | _ -> [| 4u |]

        member _.Filter(info) =
            if info.Flags.HasFlag H5FilterFlags.Decompress then
                use source = new MemoryStream(info.Buffer.ToArray(), false)
                use zlib = new ZLibStream(source, CompressionMode.Decompress)
                use target = new MemoryStream(info.Buffer.Length * 2)
                zlib.CopyTo target
                Memory<byte>(target.GetBuffer(), 0, int target.Length)
            else
                use target = new MemoryStream()

                do
                    let level =
                        if info.Parameters.Length > 0 then
                            int info.Parameters[0]
                        else
                            4

                    use zlib =
                        new ZLibStream(target, ZLibCompressionOptions(CompressionLevel = level), true)

                    zlib.Write(info.Buffer.Span)

                Memory<byte>(target.GetBuffer(), 0, int target.Length)

/// PureHDF keeps filters in a process-wide registry: register ours once, before the first write.
let private deflateRegistered = lazy (H5Filter.Register(DeflateAnyLevel()))

/// A contiguous or scalar dataset of a .NET value as PureHDF maps it (a string, a number, a
/// string[,] ...). Always wrapped in a fresh H5Dataset: PureHDF writes a raw value it has seen
/// before (the same string or array object) as a hard link to the first dataset, so two nodes'
/// `type` "Affine" would be one HDF5 object, unlike the reference's files.
let plain (value: obj) : obj = box (H5Dataset value)

/// A dataset of `data` (a flat array) with dimensions `shape`: one chunk holding the whole array
/// and deflate at `level` when given (the reference's numpy-array storage), contiguous otherwise.
/// HDF5 cannot chunk a scalar or an empty array, so those are never chunked; a rank-0 array is a
/// scalar dataset, as h5py writes a 0-d numpy array.
let dataset (data: Array) (shape: int[]) (level: int option) : obj =
    let dims = shape |> Array.map uint64

    match level with
    | _ when shape.Length = 0 -> plain (data.GetValue 0)
    | Some level when Array.forall (fun d -> d > 0) shape ->
        deflateRegistered.Force()

        let options = Dictionary<string, obj>()
        options[DeflateFilter.COMPRESSION_LEVEL] <- box level
        let filters = List<H5Filter>([ H5Filter(DeflateFilter.Id, options) ])

        box (H5Dataset(data, chunks = Array.map uint32 shape, fileDims = dims, datasetCreation = H5DatasetCreation(Filters = filters)))
    | _ -> box (H5Dataset(data, fileDims = dims))

/// numpy's bool as h5py stores it: an HDF5 enum { FALSE = 0, TRUE = 1 } over one byte, which
/// h5py reads back as bool (a .NET bool would be written as a plain uint8).
type NumpyBool =
    | FALSE = 0uy
    | TRUE = 1uy

/// The write options matching the reference's layout: datasets h5py would store contiguously are
/// contiguous, not compact (PureHDF's default for small data).
let writeOptions () =
    H5WriteOptions(PreferCompactDatasetLayout = false)

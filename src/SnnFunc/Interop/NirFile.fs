/// Reading and writing NIR graph files (HDF5, the layout of the reference `nir.read`/`nir.write`)
/// as NirDocument values.
///
/// Reading accepts every layout the reference has written since v0.1 (README §3-§4): superblock v0
/// symbol-table groups or newer; chunked + deflate, contiguous, compact and scalar datasets; fixed-
/// and variable-length strings; any or no /version; extra root objects; an empty edge list stored as
/// float64 (0,); missing v_reset (zeros) and w_in (ones); Conv2d stride/padding/dilation as ints or
/// pairs and padding "same"/"valid". Errors are InvalidDataException naming the file, the HDF5 path
/// and the field. Like the reference reader, it rejects unknown node types and unknown fields (a
/// field SnnFunc does not know could change what the network computes); input_type/output_type are
/// ignored where the reference ignores them, since they follow from the other fields.
///
/// Writing produces exactly the reference layout: per node a group with a scalar UTF-8 `type` and one
/// dataset per field named as in Python, edges as an [n, 2] string dataset, /version, metadata only
/// under `metadata/`, no attributes; numpy-array fields as one gzip chunk (level 4 by default, as
/// nir.write since 2026-01) or contiguous, Python ints/tuples/strings contiguous or scalar. Errors in
/// the document are ArgumentException naming the node path and field.
namespace SnnFunc

open System.IO

/// How NirFile.write stores numeric arrays.
[<RequireQualifiedAccess>]
type NirCompression =
    /// One chunk per array, deflate at this zlib level (0-9): the reference writer since 2026-01
    /// uses level 4.
    | Gzip of level: int
    /// Everything contiguous, as nir 1.0.7 and earlier write.
    | Uncompressed

/// Options of NirFile.writeWith.
type NirWriteOptions =
    {
        Compression: NirCompression
    }

    /// gzip level 4, as the current reference writer.
    static member Default = { Compression = NirCompression.Gzip 4 }

/// NIR graph files.
[<RequireQualifiedAccess>]
module NirFile =

    /// The newest released NIR version (v1.0.7, 2025-10) whose layout NirFile reads and writes; a
    /// suitable NirDocument.Version for files SnnFunc writes.
    [<Literal>]
    let ReferenceVersion = "1.0.7"

    /// Reads a NIR graph file.
    let read (path: string) : NirDocument = NirReader.read path

    /// Reads a NIR graph from a stream (copied into memory first when it cannot seek). `name`
    /// names the source in error messages.
    let readStream (name: string) (stream: Stream) : NirDocument = NirReader.readStream name stream

    let private level (options: NirWriteOptions) =
        match options.Compression with
        | NirCompression.Gzip level when level >= 0 && level <= 9 -> Some level
        | NirCompression.Gzip level -> invalidArg "options" $"NirFile.write: the gzip level must be 0 .. 9, got %d{level}"
        | NirCompression.Uncompressed -> None

    /// Writes a NIR graph to a stream, which must be readable, writable and seekable (PureHDF
    /// reads back what it has written).
    let writeStream (options: NirWriteOptions) (stream: Stream) (doc: NirDocument) : unit =
        if isNull stream then
            nullArg "stream"

        let file = NirWriter.build (level options) doc
        file.Write(stream, Hdf5.writeOptions ())

    /// Writes a NIR graph file with the given storage options, atomically (an existing file is
    /// replaced only once the new one is complete: a failing write never leaves half a file).
    let writeWith (options: NirWriteOptions) (path: string) (doc: NirDocument) : unit =
        // Build (and so validate) before touching the disk.
        let file = NirWriter.build (level options) doc

        NpyFormat.atomicWrite "NirFile.write" path (fun stream ->
            try
                file.Write(stream, Hdf5.writeOptions ())
            with
            | :? IOException -> reraise ()
            | e -> raise (IOException($"PureHDF failed: %s{e.Message}", e)))

    /// Writes a NIR graph file as the current reference writer does (gzip level 4), atomically.
    let write (path: string) (doc: NirDocument) : unit =
        writeWith NirWriteOptions.Default path doc

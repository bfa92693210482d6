/// Saving and loading tensors in NumPy's .npy and .npz formats (see NpyFormat for the details:
/// float16/float32 load as Float32, float64 and bool as Float64, integers as Int32).
namespace SnnFunc

open System.IO

/// Single tensors as .npy files.
module TensorIo =

    /// Reads one .npy array from a stream as a concrete tensor.
    let readNpy (stream: Stream) : Tensor =
        let shape, storage = NpyFormat.read stream
        Tensor.FromStorage(shape, storage)

    /// Writes a concrete tensor to a stream in .npy format ('<f4' or '<f8', C order).
    let writeNpy (stream: Stream) (t: Tensor) : unit =
        NpyFormat.write stream t.Shape t.Storage

    /// Loads a .npy file as a concrete tensor.
    let loadNpy (path: string) : Tensor =
        let shape, storage = NpyFormat.readFile path
        Tensor.FromStorage(shape, storage)

    /// Saves a concrete tensor as a .npy file, atomically (an existing file is replaced only once
    /// the new one is complete). The path is used as given: no ".npy" is appended.
    let saveNpy (path: string) (t: Tensor) : unit =
        NpyFormat.writeFile path t.Shape t.Storage

/// Named tensors as .npz archives (np.savez / np.savez_compressed).
[<RequireQualifiedAccess>]
module Npz =

    let private toTensors (arrays: (string * (int[] * Storage)) list) =
        arrays
        |> List.map (fun (name, (shape, storage)) -> name, Tensor.FromStorage(shape, storage))

    let private toArrays (tensors: (string * Tensor) seq) =
        tensors
        |> Seq.map (fun (name, t: Tensor) -> name, t.Shape, t.Storage)
        |> List.ofSeq

    /// Reads every array of a .npz stream, in archive order.
    let read (stream: Stream) : (string * Tensor) list = NpyFormat.readNpz stream |> toTensors

    /// Writes named tensors to a stream as a .npz archive, deflated when `compressed`.
    let write (compressed: bool) (stream: Stream) (tensors: (string * Tensor) seq) : unit =
        NpyFormat.writeNpzWith compressed stream (toArrays tensors)

    /// Loads every array of a .npz file, in archive order.
    let loadList (path: string) : (string * Tensor) list = NpyFormat.readNpzFile path |> toTensors

    /// Loads every array of a .npz file by name.
    let load (path: string) : Map<string, Tensor> = loadList path |> Map.ofList

    /// Saves named tensors as an uncompressed .npz file (like np.savez), atomically.
    let save (path: string) (tensors: (string * Tensor) seq) : unit =
        NpyFormat.writeNpzFile path (toArrays tensors)

    /// Saves named tensors as a deflated .npz file (like np.savez_compressed), atomically.
    let saveCompressed (path: string) (tensors: (string * Tensor) seq) : unit =
        NpyFormat.writeNpzFileWith true path (toArrays tensors)

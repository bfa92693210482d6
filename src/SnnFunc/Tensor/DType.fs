/// Element types and the flat, row-major buffers that hold tensor data.
namespace SnnFunc

/// The element type of a tensor. Float32 is the default everywhere.
type DType =
    | Float32
    | Float64

    /// Bytes per element.
    member d.Size =
        match d with
        | Float32 -> 4
        | Float64 -> 8

    /// NumPy's name for the type ("float32" / "float64"), used in messages.
    member d.Name =
        match d with
        | Float32 -> "float32"
        | Float64 -> "float64"

/// The flat, row-major, contiguous element buffer of a concrete tensor. Buffers are never mutated
/// after the tensor that owns them is built, so tensors can share them freely.
[<RequireQualifiedAccess>]
type Storage =
    | F32 of float32[]
    | F64 of float[]

    member s.DType =
        match s with
        | F32 _ -> Float32
        | F64 _ -> Float64

    member s.Length =
        match s with
        | F32 a -> a.Length
        | F64 a -> a.Length

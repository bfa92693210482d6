/// Element types and the flat, row-major buffers that hold tensor data.
namespace SnnFunc

/// The element type of a tensor. Float32 is the default everywhere. Int32 holds integer data
/// (indices, neuron ids, counts): it is never differentiated (its tangents are symbolic zeros and
/// gradients with respect to it are zeros). There is no Bool: comparisons return 0/1 masks of their
/// operands' dtype, which multiply straight into arithmetic and derivatives.
type DType =
    | Float32
    | Float64
    | Int32

    /// Bytes per element.
    member d.Size =
        match d with
        | Float32
        | Int32 -> 4
        | Float64 -> 8

    /// NumPy's name for the type ("float32" / "float64" / "int32"), used in messages.
    member d.Name =
        match d with
        | Float32 -> "float32"
        | Float64 -> "float64"
        | Int32 -> "int32"

    /// True for the floating-point types (the differentiable ones).
    member d.IsFloat =
        match d with
        | Float32
        | Float64 -> true
        | Int32 -> false

/// The flat, row-major, contiguous element buffer of a concrete tensor. Buffers are never mutated
/// after the tensor that owns them is built, so tensors can share them freely.
[<RequireQualifiedAccess>]
type Storage =
    | F32 of float32[]
    | F64 of float[]
    | I32 of int[]

    member s.DType =
        match s with
        | F32 _ -> Float32
        | F64 _ -> Float64
        | I32 _ -> Int32

    member s.Length =
        match s with
        | F32 a -> a.Length
        | F64 a -> a.Length
        | I32 a -> a.Length

    /// The Float32 buffer, for kernels that have dispatched on the dtype (any other: an internal error).
    member internal s.Float32s =
        match s with
        | F32 a -> a
        | _ -> invalidOp $"internal error: expected Float32 data, got %s{s.DType.Name}"

    /// The Float64 buffer, as Float32s.
    member internal s.Float64s =
        match s with
        | F64 a -> a
        | _ -> invalidOp $"internal error: expected Float64 data, got %s{s.DType.Name}"

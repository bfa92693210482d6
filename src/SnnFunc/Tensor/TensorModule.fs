/// The F# face of Tensor: camelCase functions, data-last for pipelines, over the type's members.
namespace SnnFunc

/// Functions over tensors (the F# counterpart of Tensor's members).
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module Tensor =

    // Creation
    /// A Float32 tensor from row-major data (copied).
    let ofArray (data: float32[]) (shape: int[]) = Tensor.FromArray(data, shape)
    /// A Float64 tensor from row-major data (copied).
    let ofArray64 (data: float[]) (shape: int[]) = Tensor.FromArray(data, shape)
    /// An Int32 tensor from row-major data (copied).
    let ofInts (data: int[]) (shape: int[]) = Tensor.FromArray(data, shape)
    let toInts (t: Tensor) = t.ToInt32Array()

    /// A Float32 matrix from a 2-D array.
    let ofArray2D (data: float32[,]) =
        let r, c = Array2D.length1 data, Array2D.length2 data
        Tensor.FromArray(Array.init (r * c) (fun i -> data[i / c, i % c]), r, c)

    let zeros (shape: int[]) = Tensor.Zeros shape
    let ones (shape: int[]) = Tensor.Ones shape
    let full (shape: int[]) (value: float) = Tensor.Full(shape, value)
    let fullAs (dtype: DType) (shape: int[]) (value: float) = Tensor.Full(shape, value, dtype)
    let scalar (value: float) = Tensor.Scalar value
    let zerosLike (t: Tensor) = Tensor.ZerosLike t
    let onesLike (t: Tensor) = Tensor.OnesLike t
    let arange (n: int) = Tensor.Arange n
    let linspace (start: float) (stop: float) (n: int) = Tensor.Linspace(start, stop, n)
    let eye (n: int) = Tensor.Eye n
    let oneHot (classes: int) (labels: int[]) = Tensor.OneHot(labels, classes)

    // Reading
    let shape (t: Tensor) = t.Shape
    let dtype (t: Tensor) = t.DType
    let rank (t: Tensor) = t.Rank
    let count (t: Tensor) = t.Count
    let toArray (t: Tensor) = t.ToArray()
    let toArray64 (t: Tensor) = t.ToDoubleArray()
    let item (t: Tensor) = t.ToScalar()

    // Files
    /// Loads a .npy file (NumPy's format) as a concrete tensor.
    let loadNpy (path: string) = TensorIo.loadNpy path
    /// Saves a concrete tensor as a .npy file, atomically.
    let saveNpy (path: string) (t: Tensor) = TensorIo.saveNpy path t

    // Elementwise
    let neg (t: Tensor) = t.Neg()
    let exp (t: Tensor) = t.Exp()
    let log (t: Tensor) = t.Log()
    let sin (t: Tensor) = t.Sin()
    let cos (t: Tensor) = t.Cos()
    let tanh (t: Tensor) = t.Tanh()
    let sigmoid (t: Tensor) = t.Sigmoid()
    let relu (t: Tensor) = t.Relu()
    let abs (t: Tensor) = t.Abs()
    let sqrt (t: Tensor) = t.Sqrt()
    let sign (t: Tensor) = t.Sign()
    let floor (t: Tensor) = t.Floor()
    let ceil (t: Tensor) = t.Ceil()
    let round (t: Tensor) = t.Round()
    let log1p (t: Tensor) = t.Log1p()
    let expm1 (t: Tensor) = t.Expm1()
    let square (t: Tensor) = t.Square()
    let add (a: Tensor) (b: Tensor) = a.Add b
    let sub (a: Tensor) (b: Tensor) = a.Sub b
    let mul (a: Tensor) (b: Tensor) = a.Mul b
    let div (a: Tensor) (b: Tensor) = a.Div b
    let floorDiv (a: Tensor) (b: Tensor) = a.FloorDiv b
    let rem (a: Tensor) (b: Tensor) = a.Rem b
    let pow (a: Tensor) (b: Tensor) = a.Pow b
    let maximum (a: Tensor) (b: Tensor) = a.Maximum b
    let minimum (a: Tensor) (b: Tensor) = a.Minimum b
    let eq (a: Tensor) (b: Tensor) = a.Eq b
    let ne (a: Tensor) (b: Tensor) = a.Ne b
    let lt (a: Tensor) (b: Tensor) = a.Lt b
    let le (a: Tensor) (b: Tensor) = a.Le b
    let gt (a: Tensor) (b: Tensor) = a.Gt b
    let ge (a: Tensor) (b: Tensor) = a.Ge b
    let where (cond: Tensor) (a: Tensor) (b: Tensor) = Tensor.Where(cond, a, b)

    // Reductions
    let sum (t: Tensor) = t.Sum()
    let sumAxis (axis: int) (t: Tensor) = t.Sum axis
    let sumAxes (axes: int[]) (t: Tensor) = t.SumAxes axes
    let max (t: Tensor) = t.Max()
    let maxAxis (axis: int) (t: Tensor) = t.Max axis
    let min (t: Tensor) = t.Min()
    let minAxis (axis: int) (t: Tensor) = t.Min axis
    let mean (t: Tensor) = t.Mean()
    let meanAxis (axis: int) (t: Tensor) = t.Mean axis
    let argmaxAxis (axis: int) (t: Tensor) = t.ArgMax axis
    let argminAxis (axis: int) (t: Tensor) = t.ArgMin axis
    let logSumExp (axis: int) (t: Tensor) = t.LogSumExp axis
    let softmax (axis: int) (t: Tensor) = t.Softmax axis
    let logSoftmax (axis: int) (t: Tensor) = t.LogSoftmax axis

    // Layout
    let reshape (shape: int[]) (t: Tensor) = t.Reshape shape
    let flatten (t: Tensor) = t.Flatten()
    let squeeze (axis: int) (t: Tensor) = t.Squeeze axis
    let unsqueeze (axis: int) (t: Tensor) = t.Unsqueeze axis
    let broadcastTo (shape: int[]) (t: Tensor) = t.BroadcastTo shape
    let permute (perm: int[]) (t: Tensor) = t.Permute perm
    let transpose (t: Tensor) = t.Transpose()
    let slice (starts: int[]) (sizes: int[]) (t: Tensor) = t.Slice(starts, sizes)
    let narrow (axis: int) (start: int) (length: int) (t: Tensor) = t.Narrow(axis, start, length)
    let pad (low: int[]) (high: int[]) (t: Tensor) = t.Pad(low, high)

    let concat (axis: int) (tensors: Tensor seq) =
        Tensor.Concat(Seq.toArray tensors, axis)

    let stack (axis: int) (tensors: Tensor seq) = Tensor.Stack(Seq.toArray tensors, axis)
    let gather (axis: int) (indices: int[]) (t: Tensor) = t.Gather(axis, indices)
    let scatterAdd (axis: int) (indices: int[]) (size: int) (t: Tensor) = t.ScatterAdd(axis, indices, size)
    /// Gather by an Int32 index tensor (see Tensor.Gather).
    let take (axis: int) (indices: Tensor) (t: Tensor) = t.Gather(axis, indices)
    /// Gather by Int32 indices with leading batch axes shared by t and the indices.
    let gatherBatched (axis: int) (batchDims: int) (indices: Tensor) (t: Tensor) = t.Gather(axis, indices, batchDims)
    /// Scatter-add by an Int32 index tensor (see Tensor.ScatterAdd).
    let scatterAddAt (axis: int) (indices: Tensor) (size: int) (t: Tensor) = t.ScatterAdd(axis, indices, size)
    let takeAlongAxis (axis: int) (indices: Tensor) (t: Tensor) = t.TakeAlongAxis(indices, axis)

    let segmentSum (segments: int) (segmentIds: Tensor) (data: Tensor) =
        Tensor.SegmentSum(data, segmentIds, segments)

    let cumsum (axis: int) (t: Tensor) = t.Cumsum axis
    let argsort (axis: int) (t: Tensor) = t.Argsort axis
    let sort (axis: int) (t: Tensor) = t.Sort axis
    /// Insertion points of `values` in the sorted rows of `sorted` (side 'left').
    let searchSorted (sorted: Tensor) (values: Tensor) = sorted.SearchSorted values
    let convert (dtype: DType) (t: Tensor) = t.Convert dtype

    // Products
    let matmul (a: Tensor) (b: Tensor) = a.MatMul b
    /// a · bᵀ without materialising the transpose.
    let matmulNT (a: Tensor) (b: Tensor) = a.MatMul(b, false, true)
    /// aᵀ · b without materialising the transpose.
    let matmulTN (a: Tensor) (b: Tensor) = a.MatMul(b, true, false)

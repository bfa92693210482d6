/// Concrete evaluation of the primitives on row-major buffers: shape bookkeeping around the kernels.
/// Arguments have been validated by Prim.infer before anything here runs.
module internal SnnFunc.Eval

open System
open System.Numerics
open System.Numerics.Tensors
open SnnFunc.Kernels

/// A buffer the caller fills completely: skips zeroing (large tensors are allocated every operation,
/// and clearing them would cost as much as computing them).
let inline private uninitialized<'T> (n: int) : 'T[] = GC.AllocateUninitializedArray<'T> n

// ---------------------------------------------------------------------------------------------
// Elementwise

let private unaryT<'T when 'T :> IFloatingPointIeee754<'T>> (op: UnaryOp) (x: 'T[]) : 'T[] =
    let y = uninitialized<'T> x.Length
    let xs = ReadOnlySpan<'T>(x)
    let ys = Span<'T>(y)

    // Some TensorPrimitives functions (Sigmoid) reject empty spans: an empty tensor maps to itself.
    if x.Length > 0 then
        match op with
        | UnaryOp.Neg -> TensorPrimitives.Negate<'T>(xs, ys)
        | UnaryOp.Exp -> TensorPrimitives.Exp<'T>(xs, ys)
        | UnaryOp.Log -> TensorPrimitives.Log<'T>(xs, ys)
        | UnaryOp.Sin -> TensorPrimitives.Sin<'T>(xs, ys)
        | UnaryOp.Cos -> TensorPrimitives.Cos<'T>(xs, ys)
        | UnaryOp.Tanh -> TensorPrimitives.Tanh<'T>(xs, ys)
        | UnaryOp.Sigmoid -> TensorPrimitives.Sigmoid<'T>(xs, ys)
        | UnaryOp.Relu -> TensorPrimitives.Max<'T>(xs, 'T.Zero, ys)
        | UnaryOp.Abs -> TensorPrimitives.Abs<'T>(xs, ys)
        | UnaryOp.Sqrt -> TensorPrimitives.Sqrt<'T>(xs, ys)
        | UnaryOp.Floor -> TensorPrimitives.Floor<'T>(xs, ys)
        | UnaryOp.Ceil -> TensorPrimitives.Ceiling<'T>(xs, ys)
        | UnaryOp.Round -> TensorPrimitives.Round<'T>(xs, ys)
        | UnaryOp.Log1p ->
            // TensorPrimitives.LogP1 is log(1 + x), which loses every digit of a tiny x (1 + x rounds
            // to 1). Kahan's correction: with u = 1 + x rounded, log(u) * x / (u - 1) is accurate to
            // a few ulps, because the rounding error of u cancels in the ratio.
            TensorPrimitives.LogP1<'T>(xs, ys)

            for i in 0 .. x.Length - 1 do
                let v = x[i]
                let u = 'T.op_Addition ('T.One, v)

                if 'T.op_Equality (u, 'T.One) then
                    y[i] <- v
                elif 'T.IsFinite u then
                    y[i] <- 'T.op_Multiply (y[i], 'T.op_Division (v, 'T.op_Subtraction (u, 'T.One)))
        | UnaryOp.Expm1 ->
            // TensorPrimitives.ExpM1 is exp(x) - 1, which cancels catastrophically for tiny x.
            // Kahan's correction: with u = exp(x) rounded, (u - 1) / log(u) * x.
            TensorPrimitives.Exp<'T>(xs, ys)
            let logs = uninitialized<'T> x.Length
            TensorPrimitives.Log<'T>(ReadOnlySpan<'T>(y), Span<'T>(logs))

            for i in 0 .. x.Length - 1 do
                let v = x[i]
                let u = y[i]
                let um1 = 'T.op_Subtraction (u, 'T.One)

                y[i] <-
                    if 'T.op_Equality (u, 'T.One) then
                        v
                    elif 'T.op_Equality (um1, 'T.NegativeOne) then
                        'T.NegativeOne
                    elif not ('T.IsFinite u) then
                        u // +inf, or NaN
                    else
                        'T.op_Multiply ('T.op_Division (um1, logs[i]), v) // divide first: (u - 1) * x overflows near the top
        | UnaryOp.Sign ->
            // sign(NaN) = NaN, sign(±0) = 0 (NumPy's convention).
            for i in 0 .. x.Length - 1 do
                let v = x[i]

                y[i] <-
                    if 'T.IsNaN v then v
                    elif 'T.op_GreaterThan (v, 'T.Zero) then 'T.One
                    elif 'T.op_LessThan (v, 'T.Zero) then 'T.NegativeOne
                    else 'T.Zero

    y

let private compareKind (op: BinaryOp) =
    match op with
    | BinaryOp.Eq -> CompareKind.Eq
    | BinaryOp.Ne -> CompareKind.Ne
    | BinaryOp.Lt -> CompareKind.Lt
    | BinaryOp.Le -> CompareKind.Le
    | BinaryOp.Gt -> CompareKind.Gt
    | _ -> CompareKind.Ge

/// One binary kernel call over equal-length runs; a "scalar" operand is a single element applied
/// to every element of the other.
let private binaryRun<'T when 'T :> IFloatingPointIeee754<'T>>
    (op: BinaryOp)
    (a: ReadOnlySpan<'T>)
    (aScalar: bool)
    (b: ReadOnlySpan<'T>)
    (bScalar: bool)
    (dst: Span<'T>)
    =
    match op, aScalar, bScalar with
    | BinaryOp.Add, false, false -> TensorPrimitives.Add<'T>(a, b, dst)
    | BinaryOp.Add, false, true -> TensorPrimitives.Add<'T>(a, b[0], dst)
    | BinaryOp.Add, true, _ -> TensorPrimitives.Add<'T>(b, a[0], dst)
    | BinaryOp.Sub, false, false -> TensorPrimitives.Subtract<'T>(a, b, dst)
    | BinaryOp.Sub, false, true -> TensorPrimitives.Subtract<'T>(a, b[0], dst)
    | BinaryOp.Sub, true, _ -> TensorPrimitives.Subtract<'T>(a[0], b, dst)
    | BinaryOp.Mul, false, false -> TensorPrimitives.Multiply<'T>(a, b, dst)
    | BinaryOp.Mul, false, true -> TensorPrimitives.Multiply<'T>(a, b[0], dst)
    | BinaryOp.Mul, true, _ -> TensorPrimitives.Multiply<'T>(b, a[0], dst)
    | BinaryOp.Div, false, false -> TensorPrimitives.Divide<'T>(a, b, dst)
    | BinaryOp.Div, false, true -> TensorPrimitives.Divide<'T>(a, b[0], dst)
    | BinaryOp.Div, true, _ -> TensorPrimitives.Divide<'T>(a[0], b, dst)
    | BinaryOp.Pow, false, false -> TensorPrimitives.Pow<'T>(a, b, dst)
    | BinaryOp.Pow, false, true -> TensorPrimitives.Pow<'T>(a, b[0], dst)
    | BinaryOp.Pow, true, _ -> TensorPrimitives.Pow<'T>(a[0], b, dst)
    | BinaryOp.Max, false, false -> TensorPrimitives.Max<'T>(a, b, dst)
    | BinaryOp.Max, false, true -> TensorPrimitives.Max<'T>(a, b[0], dst)
    | BinaryOp.Max, true, _ -> TensorPrimitives.Max<'T>(b, a[0], dst)
    | BinaryOp.Min, false, false -> TensorPrimitives.Min<'T>(a, b, dst)
    | BinaryOp.Min, false, true -> TensorPrimitives.Min<'T>(a, b[0], dst)
    | BinaryOp.Min, true, _ -> TensorPrimitives.Min<'T>(b, a[0], dst)
    | cmp, _, _ -> Elementwise.Compare<'T>(compareKind cmp, a, aScalar, b, bScalar, dst)

/// Materialises `x` (of shape `shape`) broadcast to `target`.
let broadcastTo<'T> (shape: int[]) (x: 'T[]) (target: int[]) : 'T[] =
    if shape = target then
        x
    else
        let y = uninitialized<'T> (Shape.count target)
        Strided.Copy(target, x, 0, Shape.broadcastStrides shape target.Length, y, 0, Shape.strides target)
        y

/// How a broadcast operand lines up with the output: the whole output, one element, a block
/// repeated along the leading axes (period = its size), or one element per run along the trailing
/// axes (run = output size / its size).
type private Layout =
    | Full
    | One
    | Repeat of period: int
    | Stretch of run: int
    | General

let private layout (shape: int[]) (outShape: int[]) =
    let n = Shape.count shape
    let total = Shape.count outShape

    if n = total then
        Full
    elif n = 1 then
        One
    else
        let padded = Array.append (Array.create (outShape.Length - shape.Length) 1) shape
        // Leading axes of `padded` that are 1, the rest equal to the output's: a repeated block.
        let firstReal =
            padded
            |> Array.tryFindIndex (fun d -> d <> 1)
            |> Option.defaultValue padded.Length

        let lastReal =
            padded |> Array.tryFindIndexBack (fun d -> d <> 1) |> Option.defaultValue -1

        if Array.forall2 (=) padded[firstReal..] outShape[firstReal..] then
            Repeat n
        elif Array.forall2 (=) padded[..lastReal] outShape[..lastReal] then
            Stretch(total / n)
        else
            General

let private binaryT<'T when 'T :> IFloatingPointIeee754<'T>>
    (op: BinaryOp)
    (outShape: int[])
    (aShape: int[], a: 'T[])
    (bShape: int[], b: 'T[])
    : 'T[] =
    let total = Shape.count outShape
    let out = uninitialized<'T> total

    match layout aShape outShape, layout bShape outShape with
    | _ when total = 0 -> ()
    | Full, Full -> binaryRun op (ReadOnlySpan<'T> a) false (ReadOnlySpan<'T> b) false (Span out)
    | Full, One -> binaryRun op (ReadOnlySpan<'T> a) false (ReadOnlySpan<'T> b) true (Span out)
    | One, Full -> binaryRun op (ReadOnlySpan<'T> a) true (ReadOnlySpan<'T> b) false (Span out)
    | Full, Repeat period ->
        for start in 0..period .. total - 1 do
            binaryRun op (ReadOnlySpan(a, start, period)) false (ReadOnlySpan<'T> b) false (Span(out, start, period))
    | Repeat period, Full ->
        for start in 0..period .. total - 1 do
            binaryRun op (ReadOnlySpan<'T> a) false (ReadOnlySpan(b, start, period)) false (Span(out, start, period))
    | Full, Stretch run ->
        for r in 0 .. total / run - 1 do
            binaryRun op (ReadOnlySpan(a, r * run, run)) false (ReadOnlySpan(b, r, 1)) true (Span(out, r * run, run))
    | Stretch run, Full ->
        for r in 0 .. total / run - 1 do
            binaryRun op (ReadOnlySpan(a, r, 1)) true (ReadOnlySpan(b, r * run, run)) false (Span(out, r * run, run))
    | _ ->
        let a' = broadcastTo aShape a outShape
        let b' = broadcastTo bShape b outShape
        binaryRun op (ReadOnlySpan<'T> a') false (ReadOnlySpan<'T> b') false (Span out)

    out

let private whereT<'T when 'T :> IFloatingPointIeee754<'T>> (outShape: int[]) (args: (int[] * 'T[])[]) =
    let c, a, b =
        match args |> Array.map (fun (s, x) -> broadcastTo s x outShape) with
        | [| c; a; b |] -> c, a, b
        | _ -> invalidOp "where takes three arguments"

    let out = uninitialized<'T> (Shape.count outShape)
    Elementwise.Select<'T>(ReadOnlySpan c, ReadOnlySpan a, ReadOnlySpan b, Span out)
    out

// ---------------------------------------------------------------------------------------------
// Reductions

/// Splits a shape at an axis into [pre; n; post] element counts.
let private around (shape: int[]) (axis: int) =
    Shape.count shape[.. axis - 1], shape[axis], Shape.count shape[axis + 1 ..]

let private reduceT<'T when 'T :> IFloatingPointIeee754<'T>> (op: ReduceOp) (axes: int[]) (shape: int[]) (x: 'T[]) =
    let kind =
        match op with
        | ReduceOp.Sum -> ReduceKind.Sum
        | ReduceOp.Max -> ReduceKind.Max
        | ReduceOp.Min -> ReduceKind.Min

    // Merge runs of adjacent reduced axes, then reduce the groups from the last to the first.
    let mutable current = x
    let mutable currentShape = shape

    for axis in Array.rev axes do
        let pre, n, post = around currentShape axis
        let out = uninitialized<'T> (pre * post)
        Reduce.Axis<'T>(kind, current, pre, n, post, out)
        current <- out
        currentShape <- Array.append currentShape[.. axis - 1] currentShape[axis + 1 ..]

    if obj.ReferenceEquals(current, x) then
        Array.copy x
    else
        current

let private argT<'T when 'T :> IFloatingPointIeee754<'T>> (smallest: bool) (axis: int) (shape: int[]) (x: 'T[]) =
    let pre, n, post = around shape axis
    let out = uninitialized<'T> (pre * post)
    Reduce.ArgExtremum<'T>(smallest, x, pre, n, post, out)
    out

// ---------------------------------------------------------------------------------------------
// Layout

let private permuteT<'T> (perm: int[]) (shape: int[]) (outShape: int[]) (x: 'T[]) =
    let y = uninitialized<'T> x.Length
    let inStrides = Shape.strides shape
    Strided.Copy(outShape, x, 0, Array.map (fun p -> inStrides[p]) perm, y, 0, Shape.strides outShape)
    y

let private sliceT<'T> (starts: int[]) (sizes: int[]) (shape: int[]) (x: 'T[]) =
    let y = uninitialized<'T> (Shape.count sizes)
    let s = Shape.strides shape
    let offset = Array.fold2 (fun acc i st -> acc + i * st) 0 starts s
    Strided.Copy(sizes, x, offset, s, y, 0, Shape.strides sizes)
    y

let private padT<'T> (low: int[]) (shape: int[]) (outShape: int[]) (x: 'T[]) =
    let y = Array.zeroCreate<'T> (Shape.count outShape)
    let s = Shape.strides outShape
    let offset = Array.fold2 (fun acc i st -> acc + i * st) 0 low s
    Strided.Copy(shape, x, 0, Shape.strides shape, y, offset, s)
    y

let private concatT<'T> (axis: int) (outShape: int[]) (parts: (int[] * 'T[])[]) =
    let y = uninitialized<'T> (Shape.count outShape)
    let s = Shape.strides outShape
    let mutable start = 0

    for shape, x in parts do
        Strided.Copy(shape, x, 0, Shape.strides shape, y, start * s[axis], s)
        start <- start + shape[axis]

    y

let private gatherT<'T> (axis: int) (indices: int[]) (shape: int[]) (x: 'T[]) =
    let pre, n, post = around shape axis
    let q = indices.Length
    let y = uninitialized<'T> (pre * q * post)

    for p in 0 .. pre - 1 do
        for j in 0 .. q - 1 do
            Array.Copy(x, (p * n + indices[j]) * post, y, (p * q + j) * post, post)

    y

let private scatterAddT<'T when 'T :> IFloatingPointIeee754<'T>> (axis: int) (indices: int[]) (size: int) (outShape: int[]) (x: 'T[]) =
    let pre = Shape.count outShape[.. axis - 1]
    let post = Shape.count outShape[axis + 1 ..]
    let q = indices.Length
    let y = Array.zeroCreate<'T> (Shape.count outShape)

    for p in 0 .. pre - 1 do
        for j in 0 .. q - 1 do
            let dst = Span<'T>(y, (p * size + indices[j]) * post, post)
            TensorPrimitives.Add<'T>(Span<'T>.op_Implicit dst, ReadOnlySpan<'T>(x, (p * q + j) * post, post), dst)

    y

// ---------------------------------------------------------------------------------------------
// Matrix product

/// Batched product with broadcast batch axes; one GEMM call per batch element, or a single GEMM
/// when a batched A meets a plain matrix B (the rows of all batch elements stack into one matrix).
let private matmul
    (gemm: bool * bool * int * int * int * 'T[] * int * int * 'T[] * int * int * 'T[] * int * int -> unit)
    (transA: bool)
    (transB: bool)
    (aShape: int[])
    (a: 'T[])
    (bShape: int[])
    (b: 'T[])
    (outShape: int[])
    =
    let ra, rb, ro = aShape.Length, bShape.Length, outShape.Length
    let m, n = outShape[ro - 2], outShape[ro - 1]
    let k = if transA then aShape[ra - 2] else aShape[ra - 1]
    let lda = aShape[ra - 1]
    let ldb = bShape[rb - 1]
    let out = uninitialized<'T> (Shape.count outShape)
    let batchShape = outShape[.. ro - 3]
    let batch = Shape.count batchShape

    if batch = 0 || m = 0 || n = 0 then
        ()
    elif rb = 2 && not transA && Shape.count aShape[.. ra - 3] = batch then
        gemm (false, transB, batch * m, n, k, a, 0, lda, b, 0, ldb, out, 0, n)
    else
        let aStrides = Shape.broadcastStrides aShape[.. ra - 3] batchShape.Length
        let bStrides = Shape.broadcastStrides bShape[.. rb - 3] batchShape.Length
        let aMat = aShape[ra - 2] * aShape[ra - 1]
        let bMat = bShape[rb - 2] * bShape[rb - 1]
        let index = Array.zeroCreate batchShape.Length

        for t in 0 .. batch - 1 do
            // Decompose t into the batch multi-index to find each operand's matrix.
            let mutable rest = t

            for d in batchShape.Length - 1 .. -1 .. 0 do
                index[d] <- rest % batchShape[d]
                rest <- rest / batchShape[d]

            let mutable ai = 0
            let mutable bi = 0

            for d in 0 .. batchShape.Length - 1 do
                ai <- ai + index[d] * aStrides[d]
                bi <- bi + index[d] * bStrides[d]

            gemm (transA, transB, m, n, k, a, ai * aMat, lda, b, bi * bMat, ldb, out, t * m * n, n)

    out

let private sgemm (ta, tb, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc) =
    Gemm.Sgemm(ta, tb, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc, false)

let private dgemm (ta, tb, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc) =
    Gemm.Dgemm(ta, tb, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc, false)

// ---------------------------------------------------------------------------------------------
// Dispatch

let private f32 (s: Storage) =
    match s with
    | Storage.F32 a -> a
    | Storage.F64 _ -> invalidOp "expected float32 storage"

let private f64 (s: Storage) =
    match s with
    | Storage.F64 a -> a
    | Storage.F32 _ -> invalidOp "expected float64 storage"

/// Evaluates a primitive on concrete arguments (shape, storage) whose output shape is `outShape`.
let run (prim: Prim) (outShape: int[]) (args: (int[] * Storage)[]) : Storage =
    let shape0, x0 = args[0]
    let isF32 = x0.DType = Float32

    let inline each (f32f: float32[] -> float32[]) (f64f: float[] -> float[]) =
        if isF32 then
            Storage.F32(f32f (f32 x0))
        else
            Storage.F64(f64f (f64 x0))

    match prim with
    | Prim.Unary op -> each (unaryT op) (unaryT op)
    | Prim.Binary op ->
        let shape1, x1 = args[1]

        if isF32 then
            Storage.F32(binaryT op outShape (shape0, f32 x0) (shape1, f32 x1))
        else
            Storage.F64(binaryT op outShape (shape0, f64 x0) (shape1, f64 x1))
    | Prim.Where ->
        if isF32 then
            Storage.F32(whereT outShape (args |> Array.map (fun (s, x) -> s, f32 x)))
        else
            Storage.F64(whereT outShape (args |> Array.map (fun (s, x) -> s, f64 x)))
    | Prim.Reduce(op, axes) -> each (reduceT op axes shape0) (reduceT op axes shape0)
    | Prim.ArgMax axis -> each (argT false axis shape0) (argT false axis shape0)
    | Prim.ArgMin axis -> each (argT true axis shape0) (argT true axis shape0)
    | Prim.MatMul(transA, transB) ->
        let shape1, x1 = args[1]

        if isF32 then
            Storage.F32(matmul sgemm transA transB shape0 (f32 x0) shape1 (f32 x1) outShape)
        else
            Storage.F64(matmul dgemm transA transB shape0 (f64 x0) shape1 (f64 x1) outShape)
    | Prim.Reshape _ -> x0 // buffers are immutable: a reshape shares them
    | Prim.BroadcastTo target -> each (fun x -> broadcastTo shape0 x target) (fun x -> broadcastTo shape0 x target)
    | Prim.Permute perm -> each (permuteT perm shape0 outShape) (permuteT perm shape0 outShape)
    | Prim.Slice(starts, sizes) -> each (sliceT starts sizes shape0) (sliceT starts sizes shape0)
    | Prim.Pad(low, _) -> each (padT low shape0 outShape) (padT low shape0 outShape)
    | Prim.Concat axis ->
        if isF32 then
            Storage.F32(concatT axis outShape (args |> Array.map (fun (s, x) -> s, f32 x)))
        else
            Storage.F64(concatT axis outShape (args |> Array.map (fun (s, x) -> s, f64 x)))
    | Prim.Gather(axis, indices, _) -> each (gatherT axis indices shape0) (gatherT axis indices shape0)
    | Prim.ScatterAdd(axis, indices, _, size) -> each (scatterAddT axis indices size outShape) (scatterAddT axis indices size outShape)
    | Prim.Convert target ->
        match x0, target with
        | Storage.F32 a, Float64 -> Storage.F64(Array.map float a)
        | Storage.F64 a, Float32 -> Storage.F32(Array.map float32 a)
        | Storage.F32 a, Float32 -> Storage.F32(Array.copy a)
        | Storage.F64 a, Float64 -> Storage.F64(Array.copy a)


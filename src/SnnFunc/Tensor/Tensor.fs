/// The Tensor type: an immutable n-d array that holds either concrete data or, under a transform,
/// a tracer; every operation goes through `Tensor.Apply`, which dispatches to the tracer's level
/// or evaluates on the kernels.
namespace SnnFunc

open System
open System.Globalization
open System.Text

/// A live transformation (jvp, grad, vmap ...) that tracers belong to. Levels are unique and
/// increasing: an operation is handled by the highest level among its arguments (see SnnFunc.Ad).
[<AbstractClass>]
type Trace(level: int64, name: string) =
    [<VolatileField>]
    let mutable resolver: Func<Tracer, Tensor> = null

    /// Unique, increasing id: nested transforms have higher levels than the ones they run under.
    member _.Level = level
    /// The transform's name, for messages ("grad", "jvp", "vmap" ...).
    member _.Name = name
    /// False once the transform has returned: its tracers may no longer be used.
    abstract IsLive: bool
    /// Applies a primitive to arguments at least one of which is a tracer of this trace; the others
    /// are concrete or belong to lower levels. `outShape`/`outDType` are the validated result type.
    abstract Process: prim: Prim * args: Tensor[] * outShape: int[] * outDType: DType -> Tensor
    /// Applies a function with its own derivative rules (see CustomFn) to arguments at least one of
    /// which is a tracer of this trace.
    abstract ProcessCustom: fn: CustomFn * args: Tensor[] -> Tensor[]

    /// While non-null, every tracer of this trace that reaches an operation is first replaced by
    /// what the resolver returns for it (null: keep it). This is how a traced function is closure-
    /// converted (Ad.checkpoint): values it captured from this trace are found, and later stood in
    /// for, without the function's cooperation. Set only through a scope that restores it.
    member internal _.Resolver
        with get () = resolver
        and set (value: Func<Tracer, Tensor>) = resolver <- value

/// A function with user-supplied derivative rules (customJvp, customVjp, checkpoint, stopGradient,
/// fused kernels). Transforms never look inside `Call` unless a rule asks them to.
///
/// The protocol, one rule per transform (JAX's custom primitives):
/// - `Call` evaluates; `Jvp` is the forward rule; linear functions add `Transpose` and
///   `OutputTypes` (reverse mode records them without evaluating); `Batch` is the vmap rule.
/// - Rules compute with `Tensor.Apply`/`Tensor.ApplyCustom`, so whatever tracers their inputs hold,
///   each operation reaches the right transform: a rule never needs concrete data itself.
and [<AbstractClass>] CustomFn(name: string) =
    /// The name used in messages.
    member _.Name = name
    /// The function itself, on values of lower levels (or concrete ones).
    abstract Call: args: Tensor[] -> Tensor[]
    /// Forward rule: outputs and output tangents from inputs and input tangents. A null tangent is a
    /// symbolic zero (in and out).
    abstract Jvp: primals: Tensor[] * tangents: Tensor[] -> Tensor[] * Tensor[]

    /// The forward rule as called by a transform `trace` (whose tracers the primals and tangents no
    /// longer hold). Only functions that must recognise values captured from that trace (closure
    /// conversion, Ad.checkpoint) need it; the default is Jvp.
    abstract JvpAt: trace: Trace * primals: Tensor[] * tangents: Tensor[] -> Tensor[] * Tensor[]
    default f.JvpAt(_, primals, tangents) = f.Jvp(primals, tangents)

    /// True when Jvp computes its primal outputs by applying custom functions (Tensor.ApplyCustom)
    /// that lower transforms handle by their own rules, as kernels do. Otherwise the transform
    /// calling Jvp applies the function itself once more for the lower transforms, so that they see
    /// this function and not the operations of the rule's primal computation.
    abstract JvpPrimalsDispatched: bool
    default _.JvpPrimalsDispatched = false

    /// True for functions linear in their arguments, except those `IsConstantArg` marks (which the
    /// function may depend on non-linearly); only those have a Transpose rule.
    abstract IsLinear: bool
    default _.IsLinear = false

    /// For linear functions: true for the argument slots that are constants rather than linear
    /// inputs (a fused layer's residuals, a sparse product's fixed spike matrix).
    abstract IsConstantArg: index: int -> bool
    default _.IsConstantArg _ = false

    /// For linear functions: cotangents of the linear arguments (null entries for constants or zeros)
    /// given the output cotangents (null = zero). `args` holds the constants; linear slots are null.
    abstract Transpose: args: Tensor[] * cotangents: Tensor[] -> Tensor[]

    default f.Transpose(_, _) =
        invalidOp $"%s{f.Name} is not linear and has no transpose rule"

    /// For linear functions: the shapes and dtypes of the outputs for these arguments (recorded
    /// without evaluating; the arguments may be tracers).
    abstract OutputTypes: args: Tensor[] -> (int[] * DType)[]

    default f.OutputTypes _ =
        invalidOp $"%s{f.Name} is not linear: its output types are only known by calling it"

    /// Batching rule (vmap): the outputs, each with the batch axis at 0, from the arguments, of which
    /// those flagged in `batched` carry a leading batch axis of size `batchSize`. None: no rule, and
    /// vmap runs Call and the other rules on per-example views (correct through the rules' tensor
    /// operations, but without a kernel's speed).
    abstract Batch: args: Tensor[] * batched: bool[] * batchSize: int -> Tensor[] option
    default _.Batch(_, _, _) = None

    /// The batching rule as called by the vmap transform `trace` (see JvpAt); the default is Batch.
    abstract BatchAt: trace: Trace * args: Tensor[] * batched: bool[] * batchSize: int -> Tensor[] option
    default f.BatchAt(_, args, batched, batchSize) = f.Batch(args, batched, batchSize)

/// The per-value state a transform keeps inside a traced tensor.
and [<AbstractClass>] Tracer(trace: Trace) =
    member _.Trace = trace

/// An immutable n-dimensional array of Float32 (default) or Float64 values, row-major. Scalars are
/// rank-0 tensors. Under a transform a tensor holds a tracer instead of data.
and [<Sealed; AllowNullLiteral>] Tensor internal (shape: int[], dtype: DType, storage: Storage, tracer: Tracer) =

    /// Internal shape array (not copied): callers must not mutate it.
    member internal _.ShapeRef = shape
    member internal _.StorageOrNull = storage
    /// The tracer when this tensor is traced by a transform, otherwise null.
    member _.Tracer = tracer
    /// True when the tensor holds concrete data (not a tracer).
    member _.IsConcrete = isNull (box tracer)

    /// The dimensions (a fresh copy).
    member _.Shape = Array.copy shape
    /// The element type.
    member _.DType = dtype
    /// Number of dimensions (0 for a scalar).
    member _.Rank = shape.Length
    /// Number of elements.
    member _.Count = Shape.count shape

    /// The concrete data buffer; raises when the tensor is a tracer (its values are not known yet).
    member t.Storage =
        if isNull (box tracer) then
            storage
        else
            invalidOp $"Tensor.Storage: the tensor is traced by '%s{tracer.Trace.Name}'; its values are not available inside the transform"

    // -----------------------------------------------------------------------------------------
    // Construction

    /// Validates and wraps a buffer; errors name `op`, the function the caller used.
    static member private Create(op: string, shape: int[], storage: Storage) =
        let n = Shape.checkedCount op shape

        if isNull (box storage) then
            Shape.fail op "storage is null"

        if storage.Length <> n then
            Shape.fail op $"data has %d{storage.Length} elements but shape %s{Shape.format shape} needs %d{n}"

        Tensor(Array.copy shape, storage.DType, storage, Unchecked.defaultof<Tracer>)

    /// Wraps a concrete buffer; its length must match the shape. The buffer is not copied.
    static member FromStorage(shape: int[], storage: Storage) =
        Tensor.Create("Tensor.FromStorage", shape, storage)

    /// A traced tensor (for transform implementations).
    static member internal OfTracer(shape: int[], dtype: DType, tracer: Tracer) =
        Tensor(shape, dtype, Unchecked.defaultof<Storage>, tracer)

    /// A Float32 tensor with a copy of `data` in row-major order (an empty shape: a scalar).
    static member FromArray(data: float32[], [<ParamArray>] shape: int[]) =
        if isNull data then
            Shape.fail "Tensor.FromArray" "data is null"

        Tensor.Create("Tensor.FromArray", shape, Storage.F32(Array.copy data))

    /// A Float64 tensor with a copy of `data` in row-major order (an empty shape: a scalar).
    static member FromArray(data: float[], [<ParamArray>] shape: int[]) =
        if isNull data then
            Shape.fail "Tensor.FromArray" "data is null"

        Tensor.Create("Tensor.FromArray", shape, Storage.F64(Array.copy data))

    /// An Int32 tensor with a copy of `data` in row-major order (indices, ids, counts).
    static member FromArray(data: int[], [<ParamArray>] shape: int[]) =
        if isNull data then
            Shape.fail "Tensor.FromArray" "data is null"

        Tensor.Create("Tensor.FromArray", shape, Storage.I32(Array.copy data))

    /// `value` as an element of `dtype`; an Int32 needs an integer value in range.
    static member internal ToInt32(op: string, value: float) =
        if
            value <> Math.Round value
            || value < float Int32.MinValue
            || value > float Int32.MaxValue
        then
            Shape.fail op $"%.17g{value} is not an int32 value"

        int value

    // Without these, FromArray(data) bound the ParamArray overloads with an empty shape: a rank-0
    // tensor that fails for any length but 1. An explicit empty shape still means rank 0.

    /// A Float32 vector [data.Length] with a copy of `data`.
    static member FromArray(data: float32[]) =
        if isNull data then
            Shape.fail "Tensor.FromArray" "data is null"

        Tensor.FromArray(data, [| data.Length |])

    /// A Float64 vector [data.Length] with a copy of `data`.
    static member FromArray(data: float[]) =
        if isNull data then
            Shape.fail "Tensor.FromArray" "data is null"

        Tensor.FromArray(data, [| data.Length |])

    /// An Int32 vector [data.Length] with a copy of `data`.
    static member FromArray(data: int[]) =
        if isNull data then
            Shape.fail "Tensor.FromArray" "data is null"

        Tensor.FromArray(data, [| data.Length |])

    static member private Filled(op: string, shape: int[], value: float, dtype: DType) =
        let n = Shape.checkedCount op shape

        match dtype with
        | Float32 -> Tensor(Array.copy shape, Float32, Storage.F32(Array.create n (float32 value)), null)
        | Float64 -> Tensor(Array.copy shape, Float64, Storage.F64(Array.create n value), null)
        | DType.Int32 -> Tensor(Array.copy shape, DType.Int32, Storage.I32(Array.create n (Tensor.ToInt32(op, value))), null)

    /// A tensor of the given shape filled with `value`.
    static member Full(shape: int[], value: float, ?dtype: DType) =
        Tensor.Filled("Tensor.full", shape, value, defaultArg dtype Float32)

    /// A Float32 tensor of zeros.
    static member Zeros([<ParamArray>] shape: int[]) =
        Tensor.Filled("Tensor.zeros", shape, 0.0, Float32)

    /// A Float32 tensor of ones.
    static member Ones([<ParamArray>] shape: int[]) =
        Tensor.Filled("Tensor.ones", shape, 1.0, Float32)

    /// A rank-0 tensor.
    static member Scalar(value: float, ?dtype: DType) =
        Tensor.Full([||], value, defaultArg dtype Float32)

    /// Zeros with the shape and dtype of `t`.
    static member ZerosLike(t: Tensor) = Tensor.Full(t.ShapeRef, 0.0, t.DType)
    /// Ones with the shape and dtype of `t`.
    static member OnesLike(t: Tensor) = Tensor.Full(t.ShapeRef, 1.0, t.DType)

    // -----------------------------------------------------------------------------------------
    // The one entry point of every primitive

    /// The arguments with every tracer whose trace has an active resolver replaced (repeatedly: a
    /// stand-in may belong to another resolving trace). The same array when nothing is replaced.
    static member private Resolve(args: Tensor[]) =
        let mutable result = args

        for i in 0 .. args.Length - 1 do
            let mutable a = args[i]
            let mutable resolving = true

            while resolving && not a.IsConcrete do
                let r = a.Tracer.Trace.Resolver
                let b = if isNull r then null else r.Invoke a.Tracer

                if isNull b then resolving <- false else a <- b

            if not (obj.ReferenceEquals(a, args[i])) then
                if obj.ReferenceEquals(result, args) then
                    result <- Array.copy args

                result[i] <- a

        result

    /// The highest-level trace among the arguments' tracers (null when all are concrete).
    static member private TopTrace(args: Tensor[]) =
        let mutable top: Trace = Unchecked.defaultof<Trace>

        for a in args do
            if not a.IsConcrete then
                let trace = a.Tracer.Trace

                if isNull (box top) || trace.Level > top.Level then
                    top <- trace

        top

    /// Applies a primitive: validates the arguments (Prim.infer), then either hands the call to the
    /// highest-level live transform among the arguments or evaluates it on concrete data.
    static member Apply(prim: Prim, [<ParamArray>] args: Tensor[]) : Tensor =
        let op () = Prim.name prim

        for a in args do
            if isNull a then
                Shape.fail (op ()) "an argument is null"

        let args = Tensor.Resolve args

        let outShape, outDType =
            Prim.infer prim (args |> Array.map (fun a -> a.ShapeRef)) (args |> Array.map (fun a -> a.DType))

        let top = Tensor.TopTrace args

        if isNull (box top) then
            let storage =
                Eval.run prim outShape (args |> Array.map (fun a -> a.ShapeRef, a.StorageOrNull))

            Tensor(outShape, outDType, storage, null)
        elif not top.IsLive then
            invalidOp
                $"%s{op ()}: escaped tracer: a value traced by '%s{top.Name}' was used after that transform returned (keep traced values inside the function you transform)"
        else
            top.Process(prim, args, outShape, outDType)

    /// Applies a function with custom derivative rules: dispatched like a primitive to the highest
    /// live transform among the arguments, or called directly on concrete data.
    static member ApplyCustom(fn: CustomFn, [<ParamArray>] args: Tensor[]) : Tensor[] =
        for a in args do
            if isNull a then
                Shape.fail fn.Name "an argument is null"

        let args = Tensor.Resolve args
        let top = Tensor.TopTrace args

        if isNull (box top) then
            fn.Call args
        elif not top.IsLive then
            invalidOp
                $"%s{fn.Name}: escaped tracer: a value traced by '%s{top.Name}' was used after that transform returned (keep traced values inside the function you transform)"
        else
            top.ProcessCustom(fn, args)

    // -----------------------------------------------------------------------------------------
    // Reading values

    /// The elements as float32 (converted if the tensor is Float64), row-major.
    member t.ToArray() : float32[] =
        match t.Storage with
        | Storage.F32 a -> Array.copy a
        | Storage.F64 a -> Array.map float32 a
        | Storage.I32 a -> Array.map float32 a

    /// The elements as float (converted if the tensor is Float32 or Int32), row-major.
    member t.ToDoubleArray() : float[] =
        match t.Storage with
        | Storage.F32 a -> Array.map float a
        | Storage.F64 a -> Array.copy a
        | Storage.I32 a -> Array.map float a

    /// The elements of an Int32 tensor, row-major (other dtypes: convert with Convert Int32 first).
    member t.ToInt32Array() : int[] =
        match t.Storage with
        | Storage.I32 a -> Array.copy a
        | _ -> Shape.fail "Tensor.toInt32Array" $"the tensor is %s{t.DType.Name}, not int32; convert it with Tensor.convert Int32 first"

    /// The single element of a one-element tensor.
    member t.ToScalar() : float =
        if t.Count <> 1 then
            Shape.fail "Tensor.item" $"needs a tensor with exactly one element, got shape %s{Shape.format shape}"

        match t.Storage with
        | Storage.F32 a -> float a[0]
        | Storage.F64 a -> a[0]
        | Storage.I32 a -> float a[0]

    override t.ToString() =
        if not t.IsConcrete then
            $"Tensor(shape=%s{Shape.format shape}, dtype=%s{dtype.Name}, traced by %s{tracer.Trace.Name})"
        else
            let values = t.ToDoubleArray()
            let sb = StringBuilder()
            let maxShown = 6

            let fmt (v: float) =
                let s = v.ToString("G6", CultureInfo.InvariantCulture)

                match dtype with
                | Float32 -> (float32 v).ToString("G6", CultureInfo.InvariantCulture)
                | Float64 -> s
                | DType.Int32 -> (int v).ToString(CultureInfo.InvariantCulture)

            // Nested brackets, eliding the middle of long axes.
            let rec write (axis: int) (offset: int) =
                if axis = shape.Length then
                    sb.Append(fmt values[offset]) |> ignore
                else
                    let n = shape[axis]
                    let stride = Shape.count shape[axis + 1 ..]
                    sb.Append('[') |> ignore

                    let shown =
                        if n <= maxShown then
                            [ 0 .. n - 1 ]
                        else
                            [ 0..2 ] @ [ -1 ] @ [ n - 3 .. n - 1 ]

                    shown
                    |> List.iteri (fun k i ->
                        if k > 0 then
                            sb.Append(
                                if axis = shape.Length - 1 then
                                    ", "
                                else
                                    ",\n" + String(' ', axis + 8)
                            )
                            |> ignore

                        if i < 0 then
                            sb.Append("...") |> ignore
                        else
                            write (axis + 1) (offset + i * stride))

                    sb.Append(']') |> ignore

            sb.Append("tensor(") |> ignore
            write 0 0
            sb.Append($", shape=%s{Shape.format shape}, dtype=%s{dtype.Name})") |> ignore
            sb.ToString()

// ---------------------------------------------------------------------------------------------
// The operation surface. Each member is a primitive (through Tensor.Apply) or a composition of
// members above it; the F# module `Tensor` (TensorModule.fs) offers the same in camelCase.

type Tensor with

    static member private Unary(op: UnaryOp, t: Tensor) = Tensor.Apply(Prim.Unary op, t)
    static member private Binary(op: BinaryOp, a: Tensor, b: Tensor) = Tensor.Apply(Prim.Binary op, a, b)

    /// A scalar of `like`'s dtype (scalar operands take the tensor's dtype). A null `like` gives a
    /// Float32 scalar, so that the operation it feeds reports the null argument by name.
    static member private ScalarLike(like: Tensor, value: float) =
        let dtype = if isNull like then Float32 else like.DType

        if dtype = DType.Int32 && value <> Math.Round value then
            Shape.fail
                "Tensor"
                $"the scalar operand %.17g{value} is not an integer but the tensor is int32; convert the tensor with Tensor.convert Float32 first"

        Tensor.Scalar(value, dtype)

    // Elementwise unary ------------------------------------------------------------------------
    member t.Neg() = Tensor.Unary(UnaryOp.Neg, t)
    member t.Exp() = Tensor.Unary(UnaryOp.Exp, t)
    member t.Log() = Tensor.Unary(UnaryOp.Log, t)
    member t.Sin() = Tensor.Unary(UnaryOp.Sin, t)
    member t.Cos() = Tensor.Unary(UnaryOp.Cos, t)
    member t.Tanh() = Tensor.Unary(UnaryOp.Tanh, t)
    member t.Sigmoid() = Tensor.Unary(UnaryOp.Sigmoid, t)
    member t.Relu() = Tensor.Unary(UnaryOp.Relu, t)
    member t.Abs() = Tensor.Unary(UnaryOp.Abs, t)
    member t.Sqrt() = Tensor.Unary(UnaryOp.Sqrt, t)
    /// -1, 0 or 1 by the sign of each element (NaN stays NaN).
    member t.Sign() = Tensor.Unary(UnaryOp.Sign, t)
    member t.Floor() = Tensor.Unary(UnaryOp.Floor, t)
    member t.Ceil() = Tensor.Unary(UnaryOp.Ceil, t)
    /// Rounds half to even, like NumPy.
    member t.Round() = Tensor.Unary(UnaryOp.Round, t)
    /// log(1 + x), accurate for small x.
    member t.Log1p() = Tensor.Unary(UnaryOp.Log1p, t)
    /// exp(x) - 1, accurate for small x.
    member t.Expm1() = Tensor.Unary(UnaryOp.Expm1, t)
    member t.Square() = Tensor.Binary(BinaryOp.Mul, t, t)

    // Elementwise binary (NumPy broadcasting) -----------------------------------------------------
    member a.Add(b: Tensor) = Tensor.Binary(BinaryOp.Add, a, b)
    member a.Sub(b: Tensor) = Tensor.Binary(BinaryOp.Sub, a, b)
    member a.Mul(b: Tensor) = Tensor.Binary(BinaryOp.Mul, a, b)
    member a.Div(b: Tensor) = Tensor.Binary(BinaryOp.Div, a, b)
    /// Elementwise larger value (NaN propagates).
    member a.Maximum(b: Tensor) = Tensor.Binary(BinaryOp.Max, a, b)
    /// Elementwise smaller value (NaN propagates).
    member a.Minimum(b: Tensor) = Tensor.Binary(BinaryOp.Min, a, b)
    member a.Pow(b: Tensor) = Tensor.Binary(BinaryOp.Pow, a, b)
    /// floor(a / b), elementwise (Python's //; integer division by zero is an error).
    member a.FloorDiv(b: Tensor) = Tensor.Binary(BinaryOp.FloorDiv, a, b)
    /// a - b floor(a / b), elementwise: the remainder with the sign of b (Python's %).
    member a.Rem(b: Tensor) = Tensor.Binary(BinaryOp.Rem, a, b)

    member a.Pow(b: float) =
        Tensor.Binary(BinaryOp.Pow, a, Tensor.ScalarLike(a, b))

    // Operators are static: they go straight to Tensor.Apply, which reports a null operand by name
    // (calling a member on a null left operand would raise NullReferenceException).
    static member (+)(a: Tensor, b: Tensor) = Tensor.Binary(BinaryOp.Add, a, b)

    static member (+)(a: Tensor, b: float) =
        Tensor.Binary(BinaryOp.Add, a, Tensor.ScalarLike(a, b))

    static member (+)(a: float, b: Tensor) =
        Tensor.Binary(BinaryOp.Add, Tensor.ScalarLike(b, a), b)

    static member (-)(a: Tensor, b: Tensor) = Tensor.Binary(BinaryOp.Sub, a, b)

    static member (-)(a: Tensor, b: float) =
        Tensor.Binary(BinaryOp.Sub, a, Tensor.ScalarLike(a, b))

    static member (-)(a: float, b: Tensor) =
        Tensor.Binary(BinaryOp.Sub, Tensor.ScalarLike(b, a), b)

    static member (*)(a: Tensor, b: Tensor) = Tensor.Binary(BinaryOp.Mul, a, b)

    static member (*)(a: Tensor, b: float) =
        Tensor.Binary(BinaryOp.Mul, a, Tensor.ScalarLike(a, b))

    static member (*)(a: float, b: Tensor) =
        Tensor.Binary(BinaryOp.Mul, Tensor.ScalarLike(b, a), b)

    static member (/)(a: Tensor, b: Tensor) = Tensor.Binary(BinaryOp.Div, a, b)

    static member (/)(a: Tensor, b: float) =
        Tensor.Binary(BinaryOp.Div, a, Tensor.ScalarLike(a, b))

    static member (/)(a: float, b: Tensor) =
        Tensor.Binary(BinaryOp.Div, Tensor.ScalarLike(b, a), b)

    /// The remainder with the sign of the divisor (Python's %), see Rem.
    static member (%)(a: Tensor, b: Tensor) = Tensor.Binary(BinaryOp.Rem, a, b)

    static member (%)(a: Tensor, b: float) =
        Tensor.Binary(BinaryOp.Rem, a, Tensor.ScalarLike(a, b))

    static member (~-)(a: Tensor) = Tensor.Unary(UnaryOp.Neg, a)
    /// F#'s `**` operator.
    static member Pow(a: Tensor, b: Tensor) = Tensor.Binary(BinaryOp.Pow, a, b)

    static member Pow(a: Tensor, b: float) =
        Tensor.Binary(BinaryOp.Pow, a, Tensor.ScalarLike(a, b))

    // Comparisons: 0/1 masks of the operands' dtype -----------------------------------------------
    member a.Eq(b: Tensor) = Tensor.Binary(BinaryOp.Eq, a, b)
    member a.Ne(b: Tensor) = Tensor.Binary(BinaryOp.Ne, a, b)
    member a.Lt(b: Tensor) = Tensor.Binary(BinaryOp.Lt, a, b)
    member a.Le(b: Tensor) = Tensor.Binary(BinaryOp.Le, a, b)
    member a.Gt(b: Tensor) = Tensor.Binary(BinaryOp.Gt, a, b)
    member a.Ge(b: Tensor) = Tensor.Binary(BinaryOp.Ge, a, b)
    member a.Eq(b: float) = a.Eq(Tensor.ScalarLike(a, b))
    member a.Ne(b: float) = a.Ne(Tensor.ScalarLike(a, b))
    member a.Lt(b: float) = a.Lt(Tensor.ScalarLike(a, b))
    member a.Le(b: float) = a.Le(Tensor.ScalarLike(a, b))
    member a.Gt(b: float) = a.Gt(Tensor.ScalarLike(a, b))
    member a.Ge(b: float) = a.Ge(Tensor.ScalarLike(a, b))

    /// Elements of `a` where `cond` is non-zero, of `b` elsewhere; all three broadcast.
    static member Where(cond: Tensor, a: Tensor, b: Tensor) = Tensor.Apply(Prim.Where, cond, a, b)

    // Reductions ------------------------------------------------------------------------------------
    member private t.Reduce(op: ReduceOp, name: string, axes: int[], keepDims: bool) =
        let axes = Shape.normAxes ("Tensor." + name) t.Rank axes
        let r = Tensor.Apply(Prim.Reduce(op, axes), t)

        if keepDims then
            r.Reshape(t.ShapeRef |> Array.mapi (fun i d -> if Array.contains i axes then 1 else d))
        else
            r

    /// Sum of all elements (a scalar).
    member t.Sum() =
        t.Reduce(ReduceOp.Sum, "sum", Array.init t.Rank id, false)

    /// Sum along one axis (negative counts from the end).
    member t.Sum(axis: int, ?keepDims: bool) =
        t.Reduce(ReduceOp.Sum, "sum", [| axis |], defaultArg keepDims false)

    /// Sum along several axes.
    member t.SumAxes(axes: int[], ?keepDims: bool) =
        t.Reduce(ReduceOp.Sum, "sum", axes, defaultArg keepDims false)

    /// Largest element (NaN propagates; an empty tensor is an error).
    member t.Max() =
        t.Reduce(ReduceOp.Max, "max", Array.init t.Rank id, false)

    member t.Max(axis: int, ?keepDims: bool) =
        t.Reduce(ReduceOp.Max, "max", [| axis |], defaultArg keepDims false)

    member t.MaxAxes(axes: int[], ?keepDims: bool) =
        t.Reduce(ReduceOp.Max, "max", axes, defaultArg keepDims false)

    member t.Min() =
        t.Reduce(ReduceOp.Min, "min", Array.init t.Rank id, false)

    member t.Min(axis: int, ?keepDims: bool) =
        t.Reduce(ReduceOp.Min, "min", [| axis |], defaultArg keepDims false)

    member t.MinAxes(axes: int[], ?keepDims: bool) =
        t.Reduce(ReduceOp.Min, "min", axes, defaultArg keepDims false)

    /// Mean along several axes (composition: sum / count).
    /// Mean along several axes (composition: sum / count); the mean of Int32 data is Float32, as in JAX.
    member t.MeanAxes(axes: int[], ?keepDims: bool) =
        let axes = Shape.normAxes "Tensor.mean" t.Rank axes
        let n = axes |> Array.fold (fun acc a -> acc * t.ShapeRef[a]) 1
        let x = if t.DType = DType.Int32 then t.Convert Float32 else t
        x.SumAxes(axes, defaultArg keepDims false) / float n

    member t.Mean() = t.MeanAxes(Array.init t.Rank id)

    member t.Mean(axis: int, ?keepDims: bool) =
        t.MeanAxes([| axis |], defaultArg keepDims false)

    /// Index (Int32) of the largest element along an axis (the first on ties, the first NaN if any).
    member t.ArgMax(axis: int) =
        Tensor.Apply(Prim.ArgMax(Shape.normAxis "Tensor.argmax" t.Rank axis), t)

    /// Index (Int32) of the smallest element along an axis (the first on ties, the first NaN if any).
    member t.ArgMin(axis: int) =
        Tensor.Apply(Prim.ArgMin(Shape.normAxis "Tensor.argmin" t.Rank axis), t)

    /// log(sum(exp(x))) along an axis, computed stably (shifted by the max, which carries no gradient
    /// of its own: the shift cancels).
    member t.LogSumExp(axis: int, ?keepDims: bool) =
        let axis = Shape.normAxis "Tensor.logSumExp" t.Rank axis
        let m = t.Max(axis, true)
        // A row of -inf gives max = -inf, a row holding +inf gives +inf: shift by 0 there, so the
        // result is -inf or +inf (as in JAX and SciPy) rather than inf - inf = NaN.
        let shift = Tensor.Where(m.Abs().Eq(Double.PositiveInfinity), Tensor.ZerosLike m, m)
        let r = (t - shift).Exp().Sum(axis, true).Log() + shift
        if defaultArg keepDims false then r else r.Squeeze axis

    /// x - logSumExp(x) along an axis (default: last).
    member t.LogSoftmax(?axis: int) =
        let axis = defaultArg axis -1
        t - t.LogSumExp(axis, true)

    /// exp(x) / sum(exp(x)) along an axis (default: last).
    member t.Softmax(?axis: int) = t.LogSoftmax(defaultArg axis -1).Exp()

    // Shape and layout ------------------------------------------------------------------------------
    /// Same elements in a new shape; one dimension may be -1 (inferred).
    member t.Reshape([<ParamArray>] shape: int[]) =
        if isNull shape then
            Shape.fail "Tensor.reshape" "shape is null"

        let shape =
            match shape |> Array.filter (fun d -> d = -1) |> Array.length with
            | 0 -> shape
            | 1 ->
                let known = shape |> Array.filter (fun d -> d <> -1) |> Array.fold (*) 1

                if known = 0 || t.Count % known <> 0 then
                    Shape.fail "Tensor.reshape" $"cannot infer -1 in %s{Shape.format shape} for %d{t.Count} elements"

                shape |> Array.map (fun d -> if d = -1 then t.Count / known else d)
            | _ -> Shape.fail "Tensor.reshape" $"only one dimension may be -1, got %s{Shape.format shape}"

        Tensor.Apply(Prim.Reshape shape, t)

    /// All elements as a rank-1 tensor.
    member t.Flatten() = t.Reshape [| t.Count |]

    /// Removes an axis of extent 1.
    member t.Squeeze(axis: int) =
        let a = Shape.normAxis "Tensor.squeeze" t.Rank axis

        if t.ShapeRef[a] <> 1 then
            Shape.fail "Tensor.squeeze" $"axis %d{axis} of shape %s{Shape.format t.ShapeRef} has extent %d{t.ShapeRef[a]}, not 1"

        t.Reshape(Array.append t.ShapeRef[.. a - 1] t.ShapeRef[a + 1 ..])

    /// Inserts an axis of extent 1 at position `axis` (negative counts from the end of the result).
    member t.Unsqueeze(axis: int) =
        let a = Shape.normAxis "Tensor.unsqueeze" (t.Rank + 1) axis
        t.Reshape(Array.concat [ t.ShapeRef[.. a - 1]; [| 1 |]; t.ShapeRef[a..] ])

    /// Broadcasts to a larger shape (NumPy rules).
    member t.BroadcastTo([<ParamArray>] shape: int[]) = Tensor.Apply(Prim.BroadcastTo shape, t)

    /// Permutes the axes: output axis i is input axis perm[i].
    member t.Permute([<ParamArray>] perm: int[]) =
        if isNull perm then
            Shape.fail "Tensor.permute" "perm is null"

        Tensor.Apply(Prim.Permute(Array.map (Shape.normAxis "Tensor.permute" t.Rank) perm), t)

    /// Swaps the last two axes (a matrix transpose; rank >= 2).
    member t.Transpose() =
        if t.Rank < 2 then
            Shape.fail "Tensor.transpose" $"needs rank >= 2, got shape %s{Shape.format t.ShapeRef}"

        t.Permute(
            Array.init t.Rank (fun i ->
                if i = t.Rank - 2 then t.Rank - 1
                elif i = t.Rank - 1 then t.Rank - 2
                else i)
        )

    /// The box starting at `starts` with extent `sizes` (one entry per axis).
    member t.Slice(starts: int[], sizes: int[]) =
        Tensor.Apply(Prim.Slice(starts, sizes), t)

    /// Elements [start, start + length) along one axis.
    member t.Narrow(axis: int, start: int, length: int) =
        let a = Shape.normAxis "Tensor.narrow" t.Rank axis
        let starts = Array.zeroCreate t.Rank
        starts[a] <- start
        let sizes = Array.copy t.ShapeRef
        sizes[a] <- length
        t.Slice(starts, sizes)

    /// Zero padding: low[i] elements before and high[i] after, along each axis.
    member t.Pad(low: int[], high: int[]) = Tensor.Apply(Prim.Pad(low, high), t)

    /// Joins tensors along an existing axis.
    static member Concat(tensors: Tensor[], ?axis: int) =
        if isNull tensors then
            Shape.fail "Tensor.concat" "tensors is null"

        if tensors.Length = 0 then
            Shape.fail "Tensor.concat" "needs at least one tensor"

        tensors
        |> Array.iteri (fun i t ->
            if isNull t then
                Shape.fail "Tensor.concat" $"tensor %d{i} is null")

        let axis = Shape.normAxis "Tensor.concat" tensors[0].Rank (defaultArg axis 0)
        Tensor.Apply(Prim.Concat axis, tensors)

    /// Joins tensors of equal shape along a new axis.
    static member Stack(tensors: Tensor[], ?axis: int) =
        if isNull tensors then
            Shape.fail "Tensor.stack" "tensors is null"

        if tensors.Length = 0 then
            Shape.fail "Tensor.stack" "needs at least one tensor"

        tensors
        |> Array.iteri (fun i t ->
            if isNull t then
                Shape.fail "Tensor.stack" $"tensor %d{i} is null")

        let axis = Shape.normAxis "Tensor.stack" (tensors[0].Rank + 1) (defaultArg axis 0)

        for t in tensors do
            if t.ShapeRef <> tensors[0].ShapeRef then
                Shape.fail "Tensor.stack" $"shapes differ: %s{Shape.format tensors[0].ShapeRef} and %s{Shape.format t.ShapeRef}"

        Tensor.Concat(tensors |> Array.map (fun t -> t.Unsqueeze axis), axis)

    /// An Int32 index tensor from a host array (validated as the static-index forms promise).
    static member private IndexTensor(op: string, indices: int[], indexShape: int[] option) =
        if isNull indices then
            Shape.fail op "indices is null"

        let indexShape = defaultArg indexShape [| indices.Length |]
        let n = Shape.checkedCount op indexShape

        if n <> indices.Length then
            Shape.fail op $"%d{indices.Length} indices do not fill the index shape %s{Shape.format indexShape}"

        Tensor.FromArray(indices, indexShape)

    /// numpy.take: picks entries along an axis; the result has indexShape in place of that axis.
    member t.Gather(axis: int, indices: int[], ?indexShape: int[]) =
        let idx = Tensor.IndexTensor("Tensor.gather", indices, indexShape)
        t.Gather(Shape.normAxis "Tensor.gather" t.Rank axis, idx)

    /// Picks entries along an axis by an Int32 index tensor (computed from data, per example under
    /// vmap). With `batchDims` = k, the first k axes of t and of the indices are batch axes paired
    /// one to one: out[b, p, j, q] = t[b, p, indices[b, j], q] (TensorFlow's gather).
    member t.Gather(axis: int, indices: Tensor, ?batchDims: int) =
        if isNull indices then
            Shape.fail "Tensor.gather" "indices is null"

        Tensor.Apply(Prim.Gather(Shape.normAxis "Tensor.gather" t.Rank axis, defaultArg batchDims 0), t, indices)

    /// Adds the slices of `t` (whose axes [axis, axis + rank(indexShape)) match indexShape) into a zero
    /// tensor whose `axis` has extent `size`, at the given indices; repeated indices accumulate.
    member t.ScatterAdd(axis: int, indices: int[], size: int, ?indexShape: int[]) =
        t.ScatterAdd(axis, Tensor.IndexTensor("Tensor.scatterAdd", indices, indexShape), size)

    /// The transpose of Gather: adds t's slices into zeros whose `axis` has extent `size`, at the
    /// Int32 indices (repeated ones accumulate); `batchDims` as in Gather.
    member t.ScatterAdd(axis: int, indices: Tensor, size: int, ?batchDims: int) =
        if isNull indices then
            Shape.fail "Tensor.scatterAdd" "indices is null"

        Tensor.Apply(Prim.ScatterAdd(axis, defaultArg batchDims 0, size), t, indices)

    /// numpy.take_along_axis: out[..., j, ...] = t[..., indices[..., j, ...], ...] along `axis`, with
    /// the other axes of t and the (same-rank, Int32) indices broadcast together.
    member t.TakeAlongAxis(indices: Tensor, axis: int) =
        if isNull indices then
            Shape.fail "Tensor.takeAlongAxis" "indices is null"

        if indices.Rank <> t.Rank then
            Shape.fail
                "Tensor.takeAlongAxis"
                $"the indices %s{Shape.format indices.ShapeRef} must have the rank of %s{Shape.format t.ShapeRef}"

        let a = Shape.normAxis "Tensor.takeAlongAxis" t.Rank axis
        let last = t.Rank - 1
        // Move the axis last, broadcast the rest, gather with every other axis a batch axis.
        let toLast (x: Tensor) =
            x.Permute(
                Array.init x.Rank (fun i ->
                    if i < a then i
                    elif i < last then i + 1
                    else a)
            )

        let xs, idx = toLast t, toLast indices

        let lead =
            Shape.broadcast "Tensor.takeAlongAxis" xs.ShapeRef[.. last - 1] idx.ShapeRef[.. last - 1]

        let xs = xs.BroadcastTo(Array.append lead [| xs.ShapeRef[last] |])
        let idx = idx.BroadcastTo(Array.append lead [| idx.ShapeRef[last] |])
        let out = Tensor.Apply(Prim.Gather(last, last), xs, idx)

        out.Permute(
            Array.init out.Rank (fun i ->
                if i < a then i
                elif i = a then last
                else i - 1)
        )

    /// Running sum along an axis (from the end when `reverse`).
    member t.Cumsum(axis: int, ?reverse: bool) =
        Tensor.Apply(Prim.Cumsum(Shape.normAxis "Tensor.cumsum" t.Rank axis, defaultArg reverse false), t)

    /// The stable sorting permutation (Int32) along an axis; NaN sorts last.
    member t.Argsort(axis: int, ?descending: bool) =
        Tensor.Apply(Prim.Argsort(Shape.normAxis "Tensor.argsort" t.Rank axis, defaultArg descending false), t)

    /// The values sorted along an axis (stable; NaN last); differentiable, through the gather of
    /// the sorting permutation.
    member t.Sort(axis: int, ?descending: bool) =
        t.TakeAlongAxis(t.Argsort(axis, defaultArg descending false), axis)

    /// numpy.searchsorted on sorted rows: for t [..., n] sorted along its last axis and values
    /// [..., m] with the same leading axes (or any shape when t is 1-d), the Int32 insertion points:
    /// the number of entries below each value (at or below it when `right`).
    member t.SearchSorted(values: Tensor, ?right: bool) =
        if isNull values then
            Shape.fail "Tensor.searchSorted" "values is null"

        let right = defaultArg right false

        if t.Rank = 1 then
            let flat = values.Reshape [| 1; values.Count |]
            Tensor.Apply(Prim.SearchSorted right, t.Reshape [| 1; t.Count |], flat).Reshape values.ShapeRef
        else
            Tensor.Apply(Prim.SearchSorted right, t, values)

    /// Sums of the rows of `data` (axis 0) that share a segment id (Int32, in [0, segments)):
    /// out[s] = Σ over i with ids[i] = s of data[i].
    static member SegmentSum(data: Tensor, segmentIds: Tensor, segments: int) =
        if isNull data || isNull segmentIds then
            Shape.fail "Tensor.segmentSum" "an argument is null"

        if
            segmentIds.Rank <> 1
            || data.Rank < 1
            || segmentIds.ShapeRef[0] <> data.ShapeRef[0]
        then
            Shape.fail
                "Tensor.segmentSum"
                $"needs data [n; ...] and segment ids [n], got %s{Shape.format data.ShapeRef} and %s{Shape.format segmentIds.ShapeRef}"

        data.ScatterAdd(0, segmentIds, segments)

    /// Converts to another element type.
    member t.Convert(dtype: DType) =
        if t.DType = dtype then
            t
        else
            Tensor.Apply(Prim.Convert dtype, t)

    // Matrix product ----------------------------------------------------------------------------------
    /// Matrix product with NumPy's matmul rules: rank-1 operands are treated as a row (left) or a
    /// column (right) vector and that axis is dropped; batch axes broadcast.
    member a.MatMul(b: Tensor) =
        if isNull b then
            Shape.fail "Tensor.matmul" "argument is null"

        if a.Rank = 0 || b.Rank = 0 then
            Shape.fail "Tensor.matmul" $"needs operands of rank >= 1, got %s{Shape.format a.ShapeRef} and %s{Shape.format b.ShapeRef}"

        // Checked here so that the message shows the caller's shapes, not the promoted matrices.
        let ka = a.ShapeRef[a.Rank - 1]
        let kb = if b.Rank = 1 then b.ShapeRef[0] else b.ShapeRef[b.Rank - 2]

        if ka <> kb then
            Shape.fail
                "Tensor.matmul"
                $"inner dimensions differ: %s{Shape.format a.ShapeRef} has k = %d{ka}, %s{Shape.format b.ShapeRef} has k = %d{kb}"

        let a2 = if a.Rank = 1 then a.Unsqueeze 0 else a
        let b2 = if b.Rank = 1 then b.Unsqueeze 1 else b
        let r = Tensor.Apply(Prim.MatMul(false, false), a2, b2)
        let r = if a.Rank = 1 then r.Squeeze(-2) else r
        if b.Rank = 1 then r.Squeeze(-1) else r

    /// Matrix product of op(a)·op(b) where op transposes the last two axes when asked — without
    /// materialising the transpose.
    member a.MatMul(b: Tensor, transA: bool, transB: bool) =
        Tensor.Apply(Prim.MatMul(transA, transB), a, b)

    // More creation -------------------------------------------------------------------------------------
    /// 0, 1, ..., n-1.
    static member Arange(n: int, ?dtype: DType) =
        Tensor.Arange(0.0, float n, 1.0, defaultArg dtype Float32)

    /// start, start + step, ... up to but excluding stop (NumPy's arange).
    static member Arange(start: float, stop: float, step: float, ?dtype: DType) =
        if
            step = 0.0
            || not (Double.IsFinite step && Double.IsFinite start && Double.IsFinite stop)
        then
            Shape.fail "Tensor.arange" $"needs a non-zero finite step and finite bounds, got start %g{start}, stop %g{stop}, step %g{step}"

        let count = Math.Ceiling((stop - start) / step)

        if count > float Int32.MaxValue then
            Shape.fail
                "Tensor.arange"
                $"start %g{start}, stop %g{stop}, step %g{step} would give %g{count} elements, more than %d{Int32.MaxValue}"

        let n = max 0 (int count)
        let values = Array.init n (fun i -> start + float i * step)
        Tensor.FromArray(values, n).Convert(defaultArg dtype Float32)

    /// n evenly spaced values from start to stop inclusive.
    static member Linspace(start: float, stop: float, n: int, ?dtype: DType) =
        if n < 0 then
            Shape.fail "Tensor.linspace" $"count %d{n} is negative"

        let values =
            Array.init n (fun i ->
                if n = 1 then
                    start
                else
                    start + (stop - start) * float i / float (n - 1))

        // The formula can miss `stop` by an ulp (0.3 + (0.9 - 0.3) = 0.9000000000000001); NumPy sets it.
        if n > 1 then
            values[n - 1] <- stop

        Tensor.FromArray(values, n).Convert(defaultArg dtype Float32)

    /// The n×n identity matrix.
    static member Eye(n: int, ?dtype: DType) =
        let n2 = Shape.checkedCount "Tensor.eye" [| n; n |]
        let values = Array.zeroCreate<float> n2

        for i in 0 .. n - 1 do
            values[i * n + i] <- 1.0

        Tensor.FromArray(values, n, n).Convert(defaultArg dtype Float32)

    /// One-hot rows: result[i, c] = 1 when labels[i] = c. Labels must lie in [0, classes).
    static member OneHot(labels: int[], classes: int, ?dtype: DType) =
        if isNull labels then
            Shape.fail "Tensor.oneHot" "labels is null"

        if classes <= 0 then
            Shape.fail "Tensor.oneHot" $"classes must be positive, got %d{classes}"

        let values = Array.zeroCreate<float> (labels.Length * classes)

        labels
        |> Array.iteri (fun i c ->
            if c < 0 || c >= classes then
                Shape.fail "Tensor.oneHot" $"label %d{c} at position %d{i} is outside [0, %d{classes})"

            values[i * classes + c] <- 1.0)

        Tensor.FromArray(values, labels.Length, classes).Convert(defaultArg dtype Float32)

/// SIMD elementwise kernels that System.Numerics.Tensors.TensorPrimitives does not provide:
/// comparisons to 0/1 masks and select.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Runtime.Intrinsics

/// The comparison a mask kernel computes.
type CompareKind =
    | Eq = 0
    | Ne = 1
    | Lt = 2
    | Le = 3
    | Gt = 4
    | Ge = 5

[<AbstractClass; Sealed>]
type Elementwise =

    static member inline private Mask512<'T when 'T :> INumber<'T>>(kind: CompareKind, a: Vector512<'T>, b: Vector512<'T>) =
        match kind with
        | CompareKind.Eq -> Vector512.Equals<'T>(a, b)
        | CompareKind.Ne -> Vector512.OnesComplement<'T>(Vector512.Equals<'T>(a, b))
        | CompareKind.Lt -> Vector512.LessThan<'T>(a, b)
        | CompareKind.Le -> Vector512.LessThanOrEqual<'T>(a, b)
        | CompareKind.Gt -> Vector512.GreaterThan<'T>(a, b)
        | _ -> Vector512.GreaterThanOrEqual<'T>(a, b)

    static member inline private Mask256<'T when 'T :> INumber<'T>>(kind: CompareKind, a: Vector256<'T>, b: Vector256<'T>) =
        match kind with
        | CompareKind.Eq -> Vector256.Equals<'T>(a, b)
        | CompareKind.Ne -> Vector256.OnesComplement<'T>(Vector256.Equals<'T>(a, b))
        | CompareKind.Lt -> Vector256.LessThan<'T>(a, b)
        | CompareKind.Le -> Vector256.LessThanOrEqual<'T>(a, b)
        | CompareKind.Gt -> Vector256.GreaterThan<'T>(a, b)
        | _ -> Vector256.GreaterThanOrEqual<'T>(a, b)

    static member inline private Scalar<'T when 'T :> INumber<'T>>(kind: CompareKind, a: 'T, b: 'T) =
        let r =
            match kind with
            | CompareKind.Eq -> 'T.op_Equality (a, b)
            | CompareKind.Ne -> 'T.op_Inequality (a, b)
            | CompareKind.Lt -> 'T.op_LessThan (a, b)
            | CompareKind.Le -> 'T.op_LessThanOrEqual (a, b)
            | CompareKind.Gt -> 'T.op_GreaterThan (a, b)
            | _ -> 'T.op_GreaterThanOrEqual (a, b)

        if r then 'T.One else 'T.Zero

    /// dst[i] <- 1 if (a[i] kind b[i]) else 0. When aScalar (bScalar) is set, a (b) holds one element
    /// that is compared with every element of the other. NaN compares unequal to everything (IEEE).
    static member Compare<'T when 'T :> INumber<'T>>
        (kind: CompareKind, a: ReadOnlySpan<'T>, aScalar: bool, b: ReadOnlySpan<'T>, bScalar: bool, dst: Span<'T>)
        =
        let n = dst.Length
        let mutable i = 0

        if Vector512.IsHardwareAccelerated && n >= Vector512<'T>.Count then
            let w = Vector512<'T>.Count
            let one = Vector512.Create<'T>('T.One)
            let sa = if aScalar then Vector512.Create<'T>(a[0]) else one
            let sb = if bScalar then Vector512.Create<'T>(b[0]) else one

            while i <= n - w do
                let va = if aScalar then sa else Vector512.Create<'T>(a.Slice(i, w))
                let vb = if bScalar then sb else Vector512.Create<'T>(b.Slice(i, w))
                Vector512.BitwiseAnd<'T>(Elementwise.Mask512(kind, va, vb), one).CopyTo(dst.Slice(i, w))
                i <- i + w
        elif Vector256.IsHardwareAccelerated && n >= Vector256<'T>.Count then
            let w = Vector256<'T>.Count
            let one = Vector256.Create<'T>('T.One)
            let sa = if aScalar then Vector256.Create<'T>(a[0]) else one
            let sb = if bScalar then Vector256.Create<'T>(b[0]) else one

            while i <= n - w do
                let va = if aScalar then sa else Vector256.Create<'T>(a.Slice(i, w))
                let vb = if bScalar then sb else Vector256.Create<'T>(b.Slice(i, w))
                Vector256.BitwiseAnd<'T>(Elementwise.Mask256(kind, va, vb), one).CopyTo(dst.Slice(i, w))
                i <- i + w

        while i < n do
            let x = if aScalar then a[0] else a[i]
            let y = if bScalar then b[0] else b[i]
            dst[i] <- Elementwise.Scalar(kind, x, y)
            i <- i + 1

    /// dst[i] <- (cond[i] <> 0 ? a[i] : b[i]); all spans have the same length.
    static member Select<'T when 'T :> INumber<'T>>
        (cond: ReadOnlySpan<'T>, a: ReadOnlySpan<'T>, b: ReadOnlySpan<'T>, dst: Span<'T>)
        =
        let n = dst.Length
        let mutable i = 0

        if Vector512.IsHardwareAccelerated then
            let w = Vector512<'T>.Count
            let zero = Vector512<'T>.Zero

            while i <= n - w do
                let isZero = Vector512.Equals<'T>(Vector512.Create<'T>(cond.Slice(i, w)), zero)

                let r =
                    Vector512.ConditionalSelect<'T>(isZero, Vector512.Create<'T>(b.Slice(i, w)), Vector512.Create<'T>(a.Slice(i, w)))

                r.CopyTo(dst.Slice(i, w))
                i <- i + w
        elif Vector256.IsHardwareAccelerated then
            let w = Vector256<'T>.Count
            let zero = Vector256<'T>.Zero

            while i <= n - w do
                let isZero = Vector256.Equals<'T>(Vector256.Create<'T>(cond.Slice(i, w)), zero)

                let r =
                    Vector256.ConditionalSelect<'T>(isZero, Vector256.Create<'T>(b.Slice(i, w)), Vector256.Create<'T>(a.Slice(i, w)))

                r.CopyTo(dst.Slice(i, w))
                i <- i + w

        while i < n do
            dst[i] <- if 'T.op_Inequality (cond[i], 'T.Zero) then a[i] else b[i]
            i <- i + 1

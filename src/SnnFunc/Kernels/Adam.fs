/// Adam's moments and update for one parameter leaf in one pass (Optim.scaleByAdam on concrete
/// tensors), with the tensor version's operations in its order, so the two agree bit for bit.
namespace SnnFunc.Kernels

open System
open System.Numerics

/// The pass, for Float32 and Float64 leaves.
[<AbstractClass; Sealed>]
type internal AdamKernels =
    /// m <- mu·b1 + g·(1 − b1), v <- nu·b2 + g²·(1 − b2), u <- (m / c1) / (√(v / c2) + eps), every
    /// constant first rounded to the leaf's dtype (as Tensor.ScalarLike does). The elements past the
    /// last whole vector go through a zero-padded vector.
    static member private Step<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (mu: 'T[], nu: 'T[], g: 'T[], b1: 'T, ob1: 'T, b2: 'T, ob2: 'T, c1: 'T, c2: 'T, eps: 'T, m: 'T[], v: 'T[], u: 'T[])
        =
        let w = Vector<'T>.Count

        let vb1, vob1, vb2, vob2 =
            Vector<'T>(b1), Vector<'T>(ob1), Vector<'T>(b2), Vector<'T>(ob2)

        let vc1, vc2, veps = Vector<'T>(c1), Vector<'T>(c2), Vector<'T>(eps)

        let inline body (muj: Vector<'T>) (nuj: Vector<'T>) (gj: Vector<'T>) =
            let mj = muj * vb1 + gj * vob1
            let vj = nuj * vb2 + (gj * gj) * vob2
            mj, vj, (mj / vc1) / (Vector.SquareRoot(vj / vc2) + veps)

        let n = g.Length
        let full = n / w * w
        let mutable j = 0

        while j < full do
            let mj, vj, uj = body (Vector<'T>(mu, j)) (Vector<'T>(nu, j)) (Vector<'T>(g, j))
            mj.CopyTo(m, j)
            vj.CopyTo(v, j)
            uj.CopyTo(u, j)
            j <- j + w

        if full < n then
            let pad (a: 'T[]) =
                let t = Array.zeroCreate<'T> w
                Array.Copy(a, full, t, 0, n - full)
                Vector<'T>(t)

            let mj, vj, uj = body (pad mu) (pad nu) (pad g)

            for (x: Vector<'T>), (dst: 'T[]) in [ mj, m; vj, v; uj, u ] do
                let t = Array.zeroCreate<'T> w
                x.CopyTo t
                Array.Copy(t, 0, dst, full, n - full)

    static member Step(mu: float32[], nu: float32[], g: float32[], b1: float, b2: float, c1: float, c2: float, eps: float, m, v, u) =
        AdamKernels.Step<float32>(
            mu,
            nu,
            g,
            float32 b1,
            float32 (1.0 - b1),
            float32 b2,
            float32 (1.0 - b2),
            float32 c1,
            float32 c2,
            float32 eps,
            m,
            v,
            u
        )

    static member Step(mu: float[], nu: float[], g: float[], b1: float, b2: float, c1: float, c2: float, eps: float, m, v, u) =
        AdamKernels.Step<float>(mu, nu, g, b1, 1.0 - b1, b2, 1.0 - b2, c1, c2, eps, m, v, u)

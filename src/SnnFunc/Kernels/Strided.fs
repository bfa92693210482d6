/// Strided n-d copies: the single loop behind permute, broadcast, slice, pad and concat.
namespace SnnFunc.Kernels

open System
open System.Runtime.CompilerServices

[<AbstractClass; Sealed>]
type Strided =

    /// Merges adjacent axes that are laid out contiguously in both source and destination, so the
    /// inner loop runs as long as possible. Returns the collapsed (shape, srcStrides, dstStrides).
    static member Collapse(shape: int[], srcStrides: int[], dstStrides: int[]) =
        let dims = ResizeArray<int * int * int>()

        for i in 0 .. shape.Length - 1 do
            if shape[i] <> 1 then
                match (if dims.Count = 0 then None else Some dims[dims.Count - 1]) with
                | Some(n, ss, ds) when ss = srcStrides[i] * shape[i] && ds = dstStrides[i] * shape[i] ->
                    dims[dims.Count - 1] <- (n * shape[i], srcStrides[i], dstStrides[i])
                | _ -> dims.Add(shape[i], srcStrides[i], dstStrides[i])

        let arr = dims.ToArray()
        Array.map (fun (n, _, _) -> n) arr, Array.map (fun (_, s, _) -> s) arr, Array.map (fun (_, _, d) -> d) arr

    /// For every index i of `shape`: dst[dstOffset + Σ i·dstStrides] <- src[srcOffset + Σ i·srcStrides].
    /// A source stride of 0 repeats (broadcasts) the element along that axis.
    static member Copy<'T>(shape: int[], src: 'T[], srcOffset: int, srcStrides: int[], dst: 'T[], dstOffset: int, dstStrides: int[]) =
        if not (Array.contains 0 shape) then
            let shape, srcStrides, dstStrides = Strided.Collapse(shape, srcStrides, dstStrides)
            let rank = shape.Length

            if rank = 0 then
                dst[dstOffset] <- src[srcOffset]
            else
                let inner = shape[rank - 1]
                let ss = srcStrides[rank - 1]
                let ds = dstStrides[rank - 1]
                let index = Array.zeroCreate (max 0 (rank - 1))
                let mutable outer = 1

                for d in 0 .. rank - 2 do
                    outer <- outer * shape[d]

                let mutable so = srcOffset
                let mutable dOff = dstOffset

                for _ in 1..outer do
                    if ss = 1 && ds = 1 then
                        Array.Copy(src, so, dst, dOff, inner)
                    elif ss = 0 && ds = 1 then
                        Span<'T>(dst, dOff, inner).Fill(src[so])
                    else
                        let mutable s = so
                        let mutable t = dOff

                        for _ in 1..inner do
                            dst[t] <- src[s]
                            s <- s + ss
                            t <- t + ds

                    // Advance the outer multi-index (odometer), adjusting both offsets incrementally.
                    let mutable d = rank - 2
                    let mutable carry = true

                    while carry && d >= 0 do
                        index[d] <- index[d] + 1
                        so <- so + srcStrides[d]
                        dOff <- dOff + dstStrides[d]

                        if index[d] = shape[d] then
                            so <- so - shape[d] * srcStrides[d]
                            dOff <- dOff - shape[d] * dstStrides[d]
                            index[d] <- 0
                            d <- d - 1
                        else
                            carry <- false

/// The convolution products' SIMD register tiles over patch rows (AVX-512, AVX2 and scalar paths)
/// and the panels that run them over whole matrices.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Threading
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// Register tiles of the convolution's products, C[mr × nr] (+)= Σ_p A[r, p] · B[p, 0 .. nr), in
/// two forms. `tileB`: A packed (the mr scalars of step p consecutive, steps aps apart), B's row p at
/// b + boffs[p] — a patch matrix's rows, or, for stride 1, shifted views of the zero-padded input
/// planes themselves (the patch matrix is never built). `tileA`: A's row r at a + aoffs[r],
/// advancing by one element per step (rows of the patch matrix, explicit or shifted views), B's row
/// p at b + p · ldb. Callers pad every operand to whole tiles.
module internal ConvTiles =

    /// 2: AVX-512 (8 × 2 zmm tiles), 1: AVX2 + FMA (4 × 2 ymm), 0: portable (4 × 4).
    let path =
        if Vector512.IsHardwareAccelerated && Avx512F.IsSupported then
            2
        elif Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported then
            1
        else
            0

    /// Tile rows.
    let mr = if path = 2 then 8 else 4

    /// Tile columns for element type 'T.
    let nr<'T> =
        if path = 2 then 2 * Vector512<'T>.Count
        elif path = 1 then 2 * Vector256<'T>.Count
        else 4

    /// 8 × 2 zmm, A packed, B rows by offset table: 16 accumulators, two B loads and eight
    /// broadcasts per step.
    let inline private tileB512
        ([<InlineIfLambda>] fma: Vector512<'T> -> Vector512<'T> -> Vector512<'T> -> Vector512<'T>)
        (kc: int)
        (a: nativeptr<'T>)
        (aps: int)
        (b: nativeptr<'T>)
        (boffs: nativeptr<int>)
        (c: nativeptr<'T>)
        (ldc: int)
        (add: bool)
        =
        let w = Vector512<'T>.Count
        let mutable s00 = Vector512<'T>.Zero
        let mutable s01 = Vector512<'T>.Zero
        let mutable s10 = Vector512<'T>.Zero
        let mutable s11 = Vector512<'T>.Zero
        let mutable s20 = Vector512<'T>.Zero
        let mutable s21 = Vector512<'T>.Zero
        let mutable s30 = Vector512<'T>.Zero
        let mutable s31 = Vector512<'T>.Zero
        let mutable s40 = Vector512<'T>.Zero
        let mutable s41 = Vector512<'T>.Zero
        let mutable s50 = Vector512<'T>.Zero
        let mutable s51 = Vector512<'T>.Zero
        let mutable s60 = Vector512<'T>.Zero
        let mutable s61 = Vector512<'T>.Zero
        let mutable s70 = Vector512<'T>.Zero
        let mutable s71 = Vector512<'T>.Zero
        let mutable pa = a
        let mutable po = boffs

        for _ in 1..kc do
            let pb = NativePtr.add b (NativePtr.read po)
            let b0 = Vector512.Load<'T> pb
            let b1 = Vector512.Load<'T>(NativePtr.add pb w)
            let x = Vector512.Create<'T>(NativePtr.read pa)
            s00 <- fma x b0 s00
            s01 <- fma x b1 s01
            let x = Vector512.Create<'T>(NativePtr.get pa 1)
            s10 <- fma x b0 s10
            s11 <- fma x b1 s11
            let x = Vector512.Create<'T>(NativePtr.get pa 2)
            s20 <- fma x b0 s20
            s21 <- fma x b1 s21
            let x = Vector512.Create<'T>(NativePtr.get pa 3)
            s30 <- fma x b0 s30
            s31 <- fma x b1 s31
            let x = Vector512.Create<'T>(NativePtr.get pa 4)
            s40 <- fma x b0 s40
            s41 <- fma x b1 s41
            let x = Vector512.Create<'T>(NativePtr.get pa 5)
            s50 <- fma x b0 s50
            s51 <- fma x b1 s51
            let x = Vector512.Create<'T>(NativePtr.get pa 6)
            s60 <- fma x b0 s60
            s61 <- fma x b1 s61
            let x = Vector512.Create<'T>(NativePtr.get pa 7)
            s70 <- fma x b0 s70
            s71 <- fma x b1 s71
            pa <- NativePtr.add pa aps
            po <- NativePtr.add po 1

        let inline put (row: int) (v0: Vector512<'T>) (v1: Vector512<'T>) =
            let p = NativePtr.add c (row * ldc)
            let q = NativePtr.add p w

            if add then
                Vector512.Store<'T>(Vector512.Load<'T> p + v0, p)
                Vector512.Store<'T>(Vector512.Load<'T> q + v1, q)
            else
                Vector512.Store<'T>(v0, p)
                Vector512.Store<'T>(v1, q)

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31
        put 4 s40 s41
        put 5 s50 s51
        put 6 s60 s61
        put 7 s70 s71

    /// 8 × 2 zmm, A rows by offset table, B rows ldb apart.
    let inline private tileA512
        ([<InlineIfLambda>] fma: Vector512<'T> -> Vector512<'T> -> Vector512<'T> -> Vector512<'T>)
        (kc: int)
        (rowLen: int)
        (rowSkip: int)
        (bSkip: int)
        (a: nativeptr<'T>)
        (aoffs: nativeptr<int>)
        (b: nativeptr<'T>)
        (ldb: int)
        (c: nativeptr<'T>)
        (ldc: int)
        (add: bool)
        =
        let w = Vector512<'T>.Count
        let mutable s00 = Vector512<'T>.Zero
        let mutable s01 = Vector512<'T>.Zero
        let mutable s10 = Vector512<'T>.Zero
        let mutable s11 = Vector512<'T>.Zero
        let mutable s20 = Vector512<'T>.Zero
        let mutable s21 = Vector512<'T>.Zero
        let mutable s30 = Vector512<'T>.Zero
        let mutable s31 = Vector512<'T>.Zero
        let mutable s40 = Vector512<'T>.Zero
        let mutable s41 = Vector512<'T>.Zero
        let mutable s50 = Vector512<'T>.Zero
        let mutable s51 = Vector512<'T>.Zero
        let mutable s60 = Vector512<'T>.Zero
        let mutable s61 = Vector512<'T>.Zero
        let mutable s70 = Vector512<'T>.Zero
        let mutable s71 = Vector512<'T>.Zero
        let o0 = NativePtr.read aoffs

        let r1, r2, r3 =
            NativePtr.get aoffs 1 - o0, NativePtr.get aoffs 2 - o0, NativePtr.get aoffs 3 - o0

        let r4, r5, r6 =
            NativePtr.get aoffs 4 - o0, NativePtr.get aoffs 5 - o0, NativePtr.get aoffs 6 - o0

        let r7 = NativePtr.get aoffs 7 - o0
        let mutable pa = NativePtr.add a o0
        let mutable pb = b

        // kc steps in rows of rowLen, the A rows skipping rowSkip elements between rows (the
        // padded width's extra columns, which hold no positions) and the B rows bSkip (the
        // positions whose input is padding, when only part of a row is read).
        for _ in 1 .. kc / rowLen do
            for _ in 1..rowLen do
                let b0 = Vector512.Load<'T> pb
                let b1 = Vector512.Load<'T>(NativePtr.add pb w)
                let x = Vector512.Create<'T>(NativePtr.read pa)
                s00 <- fma x b0 s00
                s01 <- fma x b1 s01
                let x = Vector512.Create<'T>(NativePtr.get pa r1)
                s10 <- fma x b0 s10
                s11 <- fma x b1 s11
                let x = Vector512.Create<'T>(NativePtr.get pa r2)
                s20 <- fma x b0 s20
                s21 <- fma x b1 s21
                let x = Vector512.Create<'T>(NativePtr.get pa r3)
                s30 <- fma x b0 s30
                s31 <- fma x b1 s31
                let x = Vector512.Create<'T>(NativePtr.get pa r4)
                s40 <- fma x b0 s40
                s41 <- fma x b1 s41
                let x = Vector512.Create<'T>(NativePtr.get pa r5)
                s50 <- fma x b0 s50
                s51 <- fma x b1 s51
                let x = Vector512.Create<'T>(NativePtr.get pa r6)
                s60 <- fma x b0 s60
                s61 <- fma x b1 s61
                let x = Vector512.Create<'T>(NativePtr.get pa r7)
                s70 <- fma x b0 s70
                s71 <- fma x b1 s71
                pa <- NativePtr.add pa 1
                pb <- NativePtr.add pb ldb

            pa <- NativePtr.add pa rowSkip
            pb <- NativePtr.add pb bSkip

        let inline put (row: int) (v0: Vector512<'T>) (v1: Vector512<'T>) =
            let p = NativePtr.add c (row * ldc)
            let q = NativePtr.add p w

            if add then
                Vector512.Store<'T>(Vector512.Load<'T> p + v0, p)
                Vector512.Store<'T>(Vector512.Load<'T> q + v1, q)
            else
                Vector512.Store<'T>(v0, p)
                Vector512.Store<'T>(v1, q)

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31
        put 4 s40 s41
        put 5 s50 s51
        put 6 s60 s61
        put 7 s70 s71

    /// 4 × 2 ymm (AVX2 has 16 registers), A packed, B rows by offset table.
    let inline private tileB256
        ([<InlineIfLambda>] fma: Vector256<'T> -> Vector256<'T> -> Vector256<'T> -> Vector256<'T>)
        (kc: int)
        (a: nativeptr<'T>)
        (aps: int)
        (b: nativeptr<'T>)
        (boffs: nativeptr<int>)
        (c: nativeptr<'T>)
        (ldc: int)
        (add: bool)
        =
        let w = Vector256<'T>.Count
        let mutable s00 = Vector256<'T>.Zero
        let mutable s01 = Vector256<'T>.Zero
        let mutable s10 = Vector256<'T>.Zero
        let mutable s11 = Vector256<'T>.Zero
        let mutable s20 = Vector256<'T>.Zero
        let mutable s21 = Vector256<'T>.Zero
        let mutable s30 = Vector256<'T>.Zero
        let mutable s31 = Vector256<'T>.Zero
        let mutable pa = a
        let mutable po = boffs

        for _ in 1..kc do
            let pb = NativePtr.add b (NativePtr.read po)
            let b0 = Vector256.Load<'T> pb
            let b1 = Vector256.Load<'T>(NativePtr.add pb w)
            let x = Vector256.Create<'T>(NativePtr.read pa)
            s00 <- fma x b0 s00
            s01 <- fma x b1 s01
            let x = Vector256.Create<'T>(NativePtr.get pa 1)
            s10 <- fma x b0 s10
            s11 <- fma x b1 s11
            let x = Vector256.Create<'T>(NativePtr.get pa 2)
            s20 <- fma x b0 s20
            s21 <- fma x b1 s21
            let x = Vector256.Create<'T>(NativePtr.get pa 3)
            s30 <- fma x b0 s30
            s31 <- fma x b1 s31
            pa <- NativePtr.add pa aps
            po <- NativePtr.add po 1

        let inline put (row: int) (v0: Vector256<'T>) (v1: Vector256<'T>) =
            let p = NativePtr.add c (row * ldc)
            let q = NativePtr.add p w

            if add then
                Vector256.Store<'T>(Vector256.Load<'T> p + v0, p)
                Vector256.Store<'T>(Vector256.Load<'T> q + v1, q)
            else
                Vector256.Store<'T>(v0, p)
                Vector256.Store<'T>(v1, q)

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31

    /// 4 × 2 ymm, A rows by offset table, B rows ldb apart.
    let inline private tileA256
        ([<InlineIfLambda>] fma: Vector256<'T> -> Vector256<'T> -> Vector256<'T> -> Vector256<'T>)
        (kc: int)
        (rowLen: int)
        (rowSkip: int)
        (bSkip: int)
        (a: nativeptr<'T>)
        (aoffs: nativeptr<int>)
        (b: nativeptr<'T>)
        (ldb: int)
        (c: nativeptr<'T>)
        (ldc: int)
        (add: bool)
        =
        let w = Vector256<'T>.Count
        let mutable s00 = Vector256<'T>.Zero
        let mutable s01 = Vector256<'T>.Zero
        let mutable s10 = Vector256<'T>.Zero
        let mutable s11 = Vector256<'T>.Zero
        let mutable s20 = Vector256<'T>.Zero
        let mutable s21 = Vector256<'T>.Zero
        let mutable s30 = Vector256<'T>.Zero
        let mutable s31 = Vector256<'T>.Zero
        let o0 = NativePtr.read aoffs

        let r1, r2, r3 =
            NativePtr.get aoffs 1 - o0, NativePtr.get aoffs 2 - o0, NativePtr.get aoffs 3 - o0

        let mutable pa = NativePtr.add a o0
        let mutable pb = b

        // kc steps in rows of rowLen, the A rows skipping rowSkip elements between rows (the
        // padded width's extra columns, which hold no positions) and the B rows bSkip (the
        // positions whose input is padding, when only part of a row is read).
        for _ in 1 .. kc / rowLen do
            for _ in 1..rowLen do
                let b0 = Vector256.Load<'T> pb
                let b1 = Vector256.Load<'T>(NativePtr.add pb w)
                let x = Vector256.Create<'T>(NativePtr.read pa)
                s00 <- fma x b0 s00
                s01 <- fma x b1 s01
                let x = Vector256.Create<'T>(NativePtr.get pa r1)
                s10 <- fma x b0 s10
                s11 <- fma x b1 s11
                let x = Vector256.Create<'T>(NativePtr.get pa r2)
                s20 <- fma x b0 s20
                s21 <- fma x b1 s21
                let x = Vector256.Create<'T>(NativePtr.get pa r3)
                s30 <- fma x b0 s30
                s31 <- fma x b1 s31
                pa <- NativePtr.add pa 1
                pb <- NativePtr.add pb ldb

            pa <- NativePtr.add pa rowSkip
            pb <- NativePtr.add pb bSkip

        let inline put (row: int) (v0: Vector256<'T>) (v1: Vector256<'T>) =
            let p = NativePtr.add c (row * ldc)
            let q = NativePtr.add p w

            if add then
                Vector256.Store<'T>(Vector256.Load<'T> p + v0, p)
                Vector256.Store<'T>(Vector256.Load<'T> q + v1, q)
            else
                Vector256.Store<'T>(v0, p)
                Vector256.Store<'T>(v1, q)

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31

    /// 4 × 4 in scalar arithmetic (no SIMD), A packed, B rows by offset table.
    let inline private tileBScalar
        (kc: int)
        (a: nativeptr< ^T >)
        (aps: int)
        (b: nativeptr< ^T >)
        (boffs: nativeptr<int>)
        (c: nativeptr< ^T >)
        (ldc: int)
        (add: bool)
        =
        for r in 0..3 do
            for j in 0..3 do
                let mutable s =
                    if add then
                        NativePtr.get c (r * ldc + j)
                    else
                        LanguagePrimitives.GenericZero< ^T>

                for p in 0 .. kc - 1 do
                    s <- s + NativePtr.get a (p * aps + r) * NativePtr.get b (NativePtr.get boffs p + j)

                NativePtr.set c (r * ldc + j) s

    /// 4 × 4 in scalar arithmetic, A rows by offset table.
    let inline private tileAScalar
        (kc: int)
        (rowLen: int)
        (rowSkip: int)
        (bSkip: int)
        (a: nativeptr< ^T >)
        (aoffs: nativeptr<int>)
        (b: nativeptr< ^T >)
        (ldb: int)
        (c: nativeptr< ^T >)
        (ldc: int)
        (add: bool)
        =
        for r in 0..3 do
            for j in 0..3 do
                let mutable s =
                    if add then
                        NativePtr.get c (r * ldc + j)
                    else
                        LanguagePrimitives.GenericZero< ^T>

                for p in 0 .. kc - 1 do
                    let q = p / rowLen * (rowLen + rowSkip) + p % rowLen
                    let qb = p / rowLen * (rowLen * ldb + bSkip) + p % rowLen * ldb
                    s <- s + NativePtr.get a (NativePtr.get aoffs r + q) * NativePtr.get b (qb + j)

                NativePtr.set c (r * ldc + j) s

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBS512 (kc, a: nativeptr<float32>, aps, b, boffs, c, ldc, add) =
        tileB512 (fun (x: Vector512<float32>) y z -> Avx512F.FusedMultiplyAdd(x, y, z)) kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBD512 (kc, a: nativeptr<float>, aps, b, boffs, c, ldc, add) =
        tileB512 (fun (x: Vector512<float>) y z -> Avx512F.FusedMultiplyAdd(x, y, z)) kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBS256 (kc, a: nativeptr<float32>, aps, b, boffs, c, ldc, add) =
        tileB256 (fun (x: Vector256<float32>) y z -> Fma.MultiplyAdd(x, y, z)) kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBD256 (kc, a: nativeptr<float>, aps, b, boffs, c, ldc, add) =
        tileB256 (fun (x: Vector256<float>) y z -> Fma.MultiplyAdd(x, y, z)) kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBSScalar (kc, a: nativeptr<float32>, aps, b, boffs, c, ldc, add) = tileBScalar kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBDScalar (kc, a: nativeptr<float>, aps, b, boffs, c, ldc, add) = tileBScalar kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileAS512 (kc, rowLen, rowSkip, bSkip, a: nativeptr<float32>, aoffs, b, ldb, c, ldc, add) =
        tileA512 (fun (x: Vector512<float32>) y z -> Avx512F.FusedMultiplyAdd(x, y, z)) kc rowLen rowSkip bSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileAD512 (kc, rowLen, rowSkip, bSkip, a: nativeptr<float>, aoffs, b, ldb, c, ldc, add) =
        tileA512 (fun (x: Vector512<float>) y z -> Avx512F.FusedMultiplyAdd(x, y, z)) kc rowLen rowSkip bSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileAS256 (kc, rowLen, rowSkip, bSkip, a: nativeptr<float32>, aoffs, b, ldb, c, ldc, add) =
        tileA256 (fun (x: Vector256<float32>) y z -> Fma.MultiplyAdd(x, y, z)) kc rowLen rowSkip bSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileAD256 (kc, rowLen, rowSkip, bSkip, a: nativeptr<float>, aoffs, b, ldb, c, ldc, add) =
        tileA256 (fun (x: Vector256<float>) y z -> Fma.MultiplyAdd(x, y, z)) kc rowLen rowSkip bSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileASScalar (kc, rowLen, rowSkip, bSkip, a: nativeptr<float32>, aoffs, b, ldb, c, ldc, add) =
        tileAScalar kc rowLen rowSkip bSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileADScalar (kc, rowLen, rowSkip, bSkip, a: nativeptr<float>, aoffs, b, ldb, c, ldc, add) =
        tileAScalar kc rowLen rowSkip bSkip a aoffs b ldb c ldc add

    /// The inner dimension is cut into slices of at most this many steps, so that the B rows of
    /// one slice stay in L1 while the tiles of a column block run.
    let kcMax = 256

    /// The weight gradient's B rows are dy's columns for nr output channels (a slice of 128 steps
    /// is 16 KB in float32), read while the shifted input planes stay in L1 beside them.
    let kcMaxA = 128

    /// C[m × n] (+)= A · B over whole tiles (m a multiple of mr, n of nr), A packed [k; aps],
    /// B's rows at b + boffs[p]; the first slice of the inner dimension overwrites C unless `add`.
    let inline private panelB
        ([<InlineIfLambda>] tile: int * nativeptr<'T> * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * bool -> unit)
        (nr: int)
        (m: int, n: int, k: int, a: nativeptr<'T>, aps: int, b: nativeptr<'T>, boffs: nativeptr<int>, c: nativeptr<'T>, ldc: int, add: bool)
        =
        let mutable k0 = 0

        while k0 < k do
            let kc = min kcMax (k - k0)
            let ak = NativePtr.add a (k0 * aps)
            let ok = NativePtr.add boffs k0
            let mutable j0 = 0

            while j0 < n do
                let mutable i0 = 0

                while i0 < m do
                    tile (kc, NativePtr.add ak i0, aps, NativePtr.add b j0, ok, NativePtr.add c (i0 * ldc + j0), ldc, add || k0 > 0)
                    i0 <- i0 + mr

                j0 <- j0 + nr

            k0 <- k0 + kc

    /// C[m × n] (+)= A · B over whole tiles, A's rows at a + aoffs[r] (m entries); the k steps run
    /// in rows of rowLen, A advancing one element per step and rowSkip more per row, B ldb per
    /// step and bSkip more per row.
    let inline private panelA
        ([<InlineIfLambda>] tile:
            int * int * int * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * nativeptr<'T> * int * bool -> unit)
        (nr: int)
        (
            m: int,
            n: int,
            k: int,
            rowLen: int,
            rowSkip: int,
            bSkip: int,
            a: nativeptr<'T>,
            aoffs: nativeptr<int>,
            b: nativeptr<'T>,
            ldb: int,
            c: nativeptr<'T>,
            ldc: int,
            add: bool
        ) =
        // Slices of whole rows of about kcMaxA steps.
        let slice = max 1 (kcMaxA / rowLen) * rowLen
        let mutable k0 = 0

        while k0 < k do
            let kc = min slice (k - k0)
            let ak = NativePtr.add a (k0 / rowLen * (rowLen + rowSkip))
            let bk = NativePtr.add b (k0 / rowLen * (rowLen * ldb + bSkip))
            let mutable j0 = 0

            while j0 < n do
                let mutable i0 = 0

                while i0 < m do
                    tile (
                        kc,
                        rowLen,
                        rowSkip,
                        bSkip,
                        ak,
                        NativePtr.add aoffs i0,
                        NativePtr.add bk j0,
                        ldb,
                        NativePtr.add c (i0 * ldc + j0),
                        ldc,
                        add || k0 > 0
                    )

                    i0 <- i0 + mr

                j0 <- j0 + nr

            k0 <- k0 + kc

    let panelBS args =
        match path with
        | 2 -> panelB tileBS512 nr<float32> args
        | 1 -> panelB tileBS256 nr<float32> args
        | _ -> panelB tileBSScalar nr<float32> args

    let panelBD args =
        match path with
        | 2 -> panelB tileBD512 nr<float> args
        | 1 -> panelB tileBD256 nr<float> args
        | _ -> panelB tileBDScalar nr<float> args

    let panelAS args =
        match path with
        | 2 -> panelA tileAS512 nr<float32> args
        | 1 -> panelA tileAS256 nr<float32> args
        | _ -> panelA tileASScalar nr<float32> args

    let panelAD args =
        match path with
        | 2 -> panelA tileAD512 nr<float> args
        | 1 -> panelA tileAD256 nr<float> args
        | _ -> panelA tileADScalar nr<float> args

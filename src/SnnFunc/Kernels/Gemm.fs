/// Packed, register-blocked, multi-threaded matrix multiplication (GEMM) for float32 and float64.
///
/// Goto/BLIS-style structure:  for each nc-wide column panel of op(B) (jc loop) and each kc-deep slice of the
/// shared dimension (pc loop), op(B)[pc.., jc..] is packed into kc×nr column slivers; then for each mc-tall row
/// block of op(A) (ic loop), op(A)[ic.., pc..] is packed into mr×kc row slivers, and the mr×nr micro-kernel
/// sweeps the block (jr loop over B slivers, ir loop over A slivers).  The B sliver (kc×nr) stays in L1, the
/// packed A block (mc×kc) in L2 and the packed B panel (kc×nc) in L3.  Transposed operands are handled by the
/// packing routines; ragged edges are zero-padded in the packed buffers and the micro-kernel then writes into a
/// small scratch tile whose valid part is merged into C.  Threads each take a disjoint range of C columns (or rows)
/// and run the whole algorithm on it with their own packing buffers (GemmPool below does the fork-join).
///
/// Note on JIT tiers: the F# compiler (F# 10) drops the AggressiveOptimization flag of MethodImpl (only
/// NoInlining/AggressiveInlining survive), so no method here carries it; the build setting
/// TieredCompilationQuickJitForLoops=false (Directory.Build.props) has the kernels' loop methods compiled fully
/// optimised at their first call instead (the optimised kernel keeps all accumulators in zmm registers, no
/// spills; checked with DOTNET_JitDisasmSummary).
namespace SnnFunc.Kernels

open System
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open System.Threading
open System.Threading.Tasks
open System.Diagnostics
open Microsoft.FSharp.NativeInterop

/// Scratch memory for packed panels, one per thread: a pinned (pinned-object-heap) byte array, used through a
/// 64-byte-aligned address.  It only grows, so steady-state calls allocate nothing; the GC frees it with the thread.
[<Sealed; AllowNullLiteral>]
type internal GemmScratch() =
    let mutable buffer: byte[] = null
    let mutable aligned = 0n
    let mutable capacity = 0L

    /// A 64-byte-aligned address of at least `bytes` bytes, valid until the next call on the same thread.
    member _.Get(bytes: int64) : nativeint =
        if bytes > capacity then
            buffer <- null
            buffer <- GC.AllocateUninitializedArray<byte>(int (bytes + 64L), pinned = true)
            let addr = Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0)
            aligned <- (addr + 63n) &&& ~~~63n
            capacity <- bytes

        aligned

/// The calling thread's scratch buffer.
[<AbstractClass; Sealed>]
type internal GemmScratchStore =
    [<ThreadStatic; DefaultValue>]
    static val mutable private current: GemmScratch

    static member Current =
        let s = GemmScratchStore.current

        if isNull s then
            let s = GemmScratch()
            GemmScratchStore.current <- s
            s
        else
            s

/// Fork-join helper for the GEMM threads: dedicated background worker threads (created on first use, one per
/// extra core) that spin (yielding) for up to 0.5 ms after each job before blocking, so back-to-back calls hand work over in
/// about a microsecond instead of waking a sleeping thread-pool thread (tens of microseconds under virtualisation).
/// One caller at a time owns the workers; a concurrent caller falls back to thread-pool tasks.
[<Sealed>]
type internal GemmPool private () =
    static let instance = GemmPool()
    let slots = max 1 Environment.ProcessorCount
    /// Per worker: bumped by the caller to hand it a job.
    let tickets: int[] = Array.zeroCreate slots
    /// Per worker: 1 while it is (about to be) blocked on its semaphore.
    let sleeping: int[] = Array.zeroCreate slots
    let wake: SemaphoreSlim[] = Array.init slots (fun _ -> new SemaphoreSlim(0))
    let gate = obj ()
    let mutable started = 1 // worker w (1 .. started-1) exists; the caller itself is share 0
    let mutable body: int -> unit = ignore
    let mutable failure: exn = null

    [<DefaultValue>]
    val mutable private pending: int

    /// How long an idle worker spins before it blocks.
    static let spinTicks = Stopwatch.Frequency / 2000L // 500 µs

    static member Instance = instance

    /// Worker w's loop; `seen` is its ticket value when it was created (read by the creator, so that a job
    /// posted before the thread gets going is not mistaken for the initial state).
    member private this.WorkerLoop(w: int, initialTicket: int) =
        let mutable seen = initialTicket

        while true do
            let start = Stopwatch.GetTimestamp()
            // Spin, yielding the core now and then: when this thread shares a core with the caller (the other
            // core being busy with someone else's work), a pure busy-wait would hold off the caller for a whole
            // time slice.
            let mutable spinner = SpinWait()

            while Volatile.Read(&tickets[w]) = seen
                  && (spinner.Count < 64 || Stopwatch.GetTimestamp() - start < spinTicks) do
                spinner.SpinOnce(-1)

            while Volatile.Read(&tickets[w]) = seen do
                Interlocked.Exchange(&sleeping[w], 1) |> ignore

                if Volatile.Read(&tickets[w]) = seen then
                    wake[w].Wait()

                Volatile.Write(&sleeping[w], 0)

            seen <- Volatile.Read(&tickets[w])

            try
                body w
            with e ->
                failure <- e

            Interlocked.Decrement(&this.pending) |> ignore

    /// Runs body 0 .. body (t-1) concurrently (t <= Environment.ProcessorCount): share 0 on the calling thread.
    member this.Run(t: int, job: int -> unit) =
        if t <= 1 then
            job 0
        elif t > slots || not (Monitor.TryEnter gate) then
            // Another GEMM owns the workers: fixed shares on thread-pool tasks (no work stealing).
            let tasks = Array.init (t - 1) (fun w -> Task.Run(fun () -> job (w + 1)))
            job 0
            Task.WaitAll tasks
        else
            try
                while started < t do
                    let w = started
                    let ticket = Volatile.Read(&tickets[w])
                    let th = Thread((fun () -> this.WorkerLoop(w, ticket)), 256 * 1024)
                    th.IsBackground <- true
                    th.Name <- $"SnnFunc GEMM worker %d{w}"
                    th.Start()
                    started <- started + 1

                body <- job
                failure <- null
                Volatile.Write(&this.pending, t - 1)

                for w in 1 .. t - 1 do
                    Interlocked.Increment(&tickets[w]) |> ignore

                    if Volatile.Read(&sleeping[w]) = 1 then
                        wake[w].Release() |> ignore

                let mutable mine: exn = null

                try
                    job 0
                with e ->
                    mine <- e

                let mutable spinner = SpinWait()

                while Volatile.Read(&this.pending) <> 0 do
                    spinner.SpinOnce(-1)

                body <- ignore
                let err = if isNull mine then failure else mine
                failure <- null

                if not (isNull err) then
                    raise (AggregateException("A GEMM thread failed.", err))
            finally
                Monitor.Exit gate

/// Blocking parameters of one instruction-set path.  Kernel: 2 = AVX-512, 1 = AVX2+FMA, 0 = scalar.
[<Struct>]
type internal GemmPlan =
    {
        Mr: int
        Nr: int
        Kc: int
        Mc: int
        Nc: int
        Kernel: int
    }

module internal GemmImpl =

    /// AVX-512 float32 micro-kernel, 12×32: 24 zmm accumulators.
    /// Packed A sliver: kc×12 ([p][i]); packed B sliver: kc×32 ([p][j]).  c <- acc (+ c when add).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let kernelS512 (kc: int, pa: nativeptr<float32>, pb: nativeptr<float32>, c: nativeptr<float32>, ldc: int, add: bool) =
        let mutable c0_0 = Vector512<float32>.Zero
        let mutable c0_1 = Vector512<float32>.Zero
        let mutable c1_0 = Vector512<float32>.Zero
        let mutable c1_1 = Vector512<float32>.Zero
        let mutable c2_0 = Vector512<float32>.Zero
        let mutable c2_1 = Vector512<float32>.Zero
        let mutable c3_0 = Vector512<float32>.Zero
        let mutable c3_1 = Vector512<float32>.Zero
        let mutable c4_0 = Vector512<float32>.Zero
        let mutable c4_1 = Vector512<float32>.Zero
        let mutable c5_0 = Vector512<float32>.Zero
        let mutable c5_1 = Vector512<float32>.Zero
        let mutable c6_0 = Vector512<float32>.Zero
        let mutable c6_1 = Vector512<float32>.Zero
        let mutable c7_0 = Vector512<float32>.Zero
        let mutable c7_1 = Vector512<float32>.Zero
        let mutable c8_0 = Vector512<float32>.Zero
        let mutable c8_1 = Vector512<float32>.Zero
        let mutable c9_0 = Vector512<float32>.Zero
        let mutable c9_1 = Vector512<float32>.Zero
        let mutable c10_0 = Vector512<float32>.Zero
        let mutable c10_1 = Vector512<float32>.Zero
        let mutable c11_0 = Vector512<float32>.Zero
        let mutable c11_1 = Vector512<float32>.Zero
        // Pull the C tile towards L1 while the FMAs run, so the final read-modify-write does not stall.
        let mutable r = c

        for _ in 1..12 do
            Sse.Prefetch0(NativePtr.toVoidPtr r)
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add r 16))
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add r 31))
            r <- NativePtr.add r ldc

        let mutable a = pa
        let mutable b = pb
        let mutable p = 0

        while p < kc do
            let b0 = Vector512.Load(NativePtr.add b 0)
            let b1 = Vector512.Load(NativePtr.add b 16)
            let a0 = Vector512.Create(NativePtr.get a 0)
            c0_0 <- Avx512F.FusedMultiplyAdd(a0, b0, c0_0)
            c0_1 <- Avx512F.FusedMultiplyAdd(a0, b1, c0_1)
            let a1 = Vector512.Create(NativePtr.get a 1)
            c1_0 <- Avx512F.FusedMultiplyAdd(a1, b0, c1_0)
            c1_1 <- Avx512F.FusedMultiplyAdd(a1, b1, c1_1)
            let a2 = Vector512.Create(NativePtr.get a 2)
            c2_0 <- Avx512F.FusedMultiplyAdd(a2, b0, c2_0)
            c2_1 <- Avx512F.FusedMultiplyAdd(a2, b1, c2_1)
            let a3 = Vector512.Create(NativePtr.get a 3)
            c3_0 <- Avx512F.FusedMultiplyAdd(a3, b0, c3_0)
            c3_1 <- Avx512F.FusedMultiplyAdd(a3, b1, c3_1)
            let a4 = Vector512.Create(NativePtr.get a 4)
            c4_0 <- Avx512F.FusedMultiplyAdd(a4, b0, c4_0)
            c4_1 <- Avx512F.FusedMultiplyAdd(a4, b1, c4_1)
            let a5 = Vector512.Create(NativePtr.get a 5)
            c5_0 <- Avx512F.FusedMultiplyAdd(a5, b0, c5_0)
            c5_1 <- Avx512F.FusedMultiplyAdd(a5, b1, c5_1)
            let a6 = Vector512.Create(NativePtr.get a 6)
            c6_0 <- Avx512F.FusedMultiplyAdd(a6, b0, c6_0)
            c6_1 <- Avx512F.FusedMultiplyAdd(a6, b1, c6_1)
            let a7 = Vector512.Create(NativePtr.get a 7)
            c7_0 <- Avx512F.FusedMultiplyAdd(a7, b0, c7_0)
            c7_1 <- Avx512F.FusedMultiplyAdd(a7, b1, c7_1)
            let a8 = Vector512.Create(NativePtr.get a 8)
            c8_0 <- Avx512F.FusedMultiplyAdd(a8, b0, c8_0)
            c8_1 <- Avx512F.FusedMultiplyAdd(a8, b1, c8_1)
            let a9 = Vector512.Create(NativePtr.get a 9)
            c9_0 <- Avx512F.FusedMultiplyAdd(a9, b0, c9_0)
            c9_1 <- Avx512F.FusedMultiplyAdd(a9, b1, c9_1)
            let a10 = Vector512.Create(NativePtr.get a 10)
            c10_0 <- Avx512F.FusedMultiplyAdd(a10, b0, c10_0)
            c10_1 <- Avx512F.FusedMultiplyAdd(a10, b1, c10_1)
            let a11 = Vector512.Create(NativePtr.get a 11)
            c11_0 <- Avx512F.FusedMultiplyAdd(a11, b0, c11_0)
            c11_1 <- Avx512F.FusedMultiplyAdd(a11, b1, c11_1)
            a <- NativePtr.add a 12
            b <- NativePtr.add b 32
            p <- p + 1

        r <- c

        if add then
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c0_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c0_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c1_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c1_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c2_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c2_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c3_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c3_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c4_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c4_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c5_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c5_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c6_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c6_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c7_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c7_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c8_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c8_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c9_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c9_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c10_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c10_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c11_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 16) + c11_1, NativePtr.add r 16)
        else
            Vector512.Store(c0_0, NativePtr.add r 0)
            Vector512.Store(c0_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c1_0, NativePtr.add r 0)
            Vector512.Store(c1_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c2_0, NativePtr.add r 0)
            Vector512.Store(c2_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c3_0, NativePtr.add r 0)
            Vector512.Store(c3_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c4_0, NativePtr.add r 0)
            Vector512.Store(c4_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c5_0, NativePtr.add r 0)
            Vector512.Store(c5_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c6_0, NativePtr.add r 0)
            Vector512.Store(c6_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c7_0, NativePtr.add r 0)
            Vector512.Store(c7_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c8_0, NativePtr.add r 0)
            Vector512.Store(c8_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c9_0, NativePtr.add r 0)
            Vector512.Store(c9_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c10_0, NativePtr.add r 0)
            Vector512.Store(c10_1, NativePtr.add r 16)
            r <- NativePtr.add r ldc
            Vector512.Store(c11_0, NativePtr.add r 0)
            Vector512.Store(c11_1, NativePtr.add r 16)

    /// AVX-512 float64 micro-kernel, 12×16: 24 zmm accumulators.
    /// Packed A sliver: kc×12 ([p][i]); packed B sliver: kc×16 ([p][j]).  c <- acc (+ c when add).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let kernelD512 (kc: int, pa: nativeptr<float>, pb: nativeptr<float>, c: nativeptr<float>, ldc: int, add: bool) =
        let mutable c0_0 = Vector512<float>.Zero
        let mutable c0_1 = Vector512<float>.Zero
        let mutable c1_0 = Vector512<float>.Zero
        let mutable c1_1 = Vector512<float>.Zero
        let mutable c2_0 = Vector512<float>.Zero
        let mutable c2_1 = Vector512<float>.Zero
        let mutable c3_0 = Vector512<float>.Zero
        let mutable c3_1 = Vector512<float>.Zero
        let mutable c4_0 = Vector512<float>.Zero
        let mutable c4_1 = Vector512<float>.Zero
        let mutable c5_0 = Vector512<float>.Zero
        let mutable c5_1 = Vector512<float>.Zero
        let mutable c6_0 = Vector512<float>.Zero
        let mutable c6_1 = Vector512<float>.Zero
        let mutable c7_0 = Vector512<float>.Zero
        let mutable c7_1 = Vector512<float>.Zero
        let mutable c8_0 = Vector512<float>.Zero
        let mutable c8_1 = Vector512<float>.Zero
        let mutable c9_0 = Vector512<float>.Zero
        let mutable c9_1 = Vector512<float>.Zero
        let mutable c10_0 = Vector512<float>.Zero
        let mutable c10_1 = Vector512<float>.Zero
        let mutable c11_0 = Vector512<float>.Zero
        let mutable c11_1 = Vector512<float>.Zero
        // Pull the C tile towards L1 while the FMAs run, so the final read-modify-write does not stall.
        let mutable r = c

        for _ in 1..12 do
            Sse.Prefetch0(NativePtr.toVoidPtr r)
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add r 8))
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add r 15))
            r <- NativePtr.add r ldc

        let mutable a = pa
        let mutable b = pb
        let mutable p = 0

        while p < kc do
            let b0 = Vector512.Load(NativePtr.add b 0)
            let b1 = Vector512.Load(NativePtr.add b 8)
            let a0 = Vector512.Create(NativePtr.get a 0)
            c0_0 <- Avx512F.FusedMultiplyAdd(a0, b0, c0_0)
            c0_1 <- Avx512F.FusedMultiplyAdd(a0, b1, c0_1)
            let a1 = Vector512.Create(NativePtr.get a 1)
            c1_0 <- Avx512F.FusedMultiplyAdd(a1, b0, c1_0)
            c1_1 <- Avx512F.FusedMultiplyAdd(a1, b1, c1_1)
            let a2 = Vector512.Create(NativePtr.get a 2)
            c2_0 <- Avx512F.FusedMultiplyAdd(a2, b0, c2_0)
            c2_1 <- Avx512F.FusedMultiplyAdd(a2, b1, c2_1)
            let a3 = Vector512.Create(NativePtr.get a 3)
            c3_0 <- Avx512F.FusedMultiplyAdd(a3, b0, c3_0)
            c3_1 <- Avx512F.FusedMultiplyAdd(a3, b1, c3_1)
            let a4 = Vector512.Create(NativePtr.get a 4)
            c4_0 <- Avx512F.FusedMultiplyAdd(a4, b0, c4_0)
            c4_1 <- Avx512F.FusedMultiplyAdd(a4, b1, c4_1)
            let a5 = Vector512.Create(NativePtr.get a 5)
            c5_0 <- Avx512F.FusedMultiplyAdd(a5, b0, c5_0)
            c5_1 <- Avx512F.FusedMultiplyAdd(a5, b1, c5_1)
            let a6 = Vector512.Create(NativePtr.get a 6)
            c6_0 <- Avx512F.FusedMultiplyAdd(a6, b0, c6_0)
            c6_1 <- Avx512F.FusedMultiplyAdd(a6, b1, c6_1)
            let a7 = Vector512.Create(NativePtr.get a 7)
            c7_0 <- Avx512F.FusedMultiplyAdd(a7, b0, c7_0)
            c7_1 <- Avx512F.FusedMultiplyAdd(a7, b1, c7_1)
            let a8 = Vector512.Create(NativePtr.get a 8)
            c8_0 <- Avx512F.FusedMultiplyAdd(a8, b0, c8_0)
            c8_1 <- Avx512F.FusedMultiplyAdd(a8, b1, c8_1)
            let a9 = Vector512.Create(NativePtr.get a 9)
            c9_0 <- Avx512F.FusedMultiplyAdd(a9, b0, c9_0)
            c9_1 <- Avx512F.FusedMultiplyAdd(a9, b1, c9_1)
            let a10 = Vector512.Create(NativePtr.get a 10)
            c10_0 <- Avx512F.FusedMultiplyAdd(a10, b0, c10_0)
            c10_1 <- Avx512F.FusedMultiplyAdd(a10, b1, c10_1)
            let a11 = Vector512.Create(NativePtr.get a 11)
            c11_0 <- Avx512F.FusedMultiplyAdd(a11, b0, c11_0)
            c11_1 <- Avx512F.FusedMultiplyAdd(a11, b1, c11_1)
            a <- NativePtr.add a 12
            b <- NativePtr.add b 16
            p <- p + 1

        r <- c

        if add then
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c0_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c0_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c1_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c1_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c2_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c2_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c3_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c3_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c4_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c4_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c5_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c5_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c6_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c6_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c7_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c7_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c8_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c8_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c9_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c9_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c10_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c10_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(Vector512.Load(NativePtr.add r 0) + c11_0, NativePtr.add r 0)
            Vector512.Store(Vector512.Load(NativePtr.add r 8) + c11_1, NativePtr.add r 8)
        else
            Vector512.Store(c0_0, NativePtr.add r 0)
            Vector512.Store(c0_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c1_0, NativePtr.add r 0)
            Vector512.Store(c1_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c2_0, NativePtr.add r 0)
            Vector512.Store(c2_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c3_0, NativePtr.add r 0)
            Vector512.Store(c3_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c4_0, NativePtr.add r 0)
            Vector512.Store(c4_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c5_0, NativePtr.add r 0)
            Vector512.Store(c5_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c6_0, NativePtr.add r 0)
            Vector512.Store(c6_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c7_0, NativePtr.add r 0)
            Vector512.Store(c7_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c8_0, NativePtr.add r 0)
            Vector512.Store(c8_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c9_0, NativePtr.add r 0)
            Vector512.Store(c9_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c10_0, NativePtr.add r 0)
            Vector512.Store(c10_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector512.Store(c11_0, NativePtr.add r 0)
            Vector512.Store(c11_1, NativePtr.add r 8)

    /// AVX2+FMA float32 micro-kernel, 6×16: 12 ymm accumulators.
    /// Packed A sliver: kc×6 ([p][i]); packed B sliver: kc×16 ([p][j]).  c <- acc (+ c when add).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let kernelS256 (kc: int, pa: nativeptr<float32>, pb: nativeptr<float32>, c: nativeptr<float32>, ldc: int, add: bool) =
        let mutable c0_0 = Vector256<float32>.Zero
        let mutable c0_1 = Vector256<float32>.Zero
        let mutable c1_0 = Vector256<float32>.Zero
        let mutable c1_1 = Vector256<float32>.Zero
        let mutable c2_0 = Vector256<float32>.Zero
        let mutable c2_1 = Vector256<float32>.Zero
        let mutable c3_0 = Vector256<float32>.Zero
        let mutable c3_1 = Vector256<float32>.Zero
        let mutable c4_0 = Vector256<float32>.Zero
        let mutable c4_1 = Vector256<float32>.Zero
        let mutable c5_0 = Vector256<float32>.Zero
        let mutable c5_1 = Vector256<float32>.Zero
        // Pull the C tile towards L1 while the FMAs run, so the final read-modify-write does not stall.
        let mutable r = c

        for _ in 1..6 do
            Sse.Prefetch0(NativePtr.toVoidPtr r)
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add r 8))
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add r 15))
            r <- NativePtr.add r ldc

        let mutable a = pa
        let mutable b = pb
        let mutable p = 0

        while p < kc do
            let b0 = Vector256.Load(NativePtr.add b 0)
            let b1 = Vector256.Load(NativePtr.add b 8)
            let a0 = Vector256.Create(NativePtr.get a 0)
            c0_0 <- Fma.MultiplyAdd(a0, b0, c0_0)
            c0_1 <- Fma.MultiplyAdd(a0, b1, c0_1)
            let a1 = Vector256.Create(NativePtr.get a 1)
            c1_0 <- Fma.MultiplyAdd(a1, b0, c1_0)
            c1_1 <- Fma.MultiplyAdd(a1, b1, c1_1)
            let a2 = Vector256.Create(NativePtr.get a 2)
            c2_0 <- Fma.MultiplyAdd(a2, b0, c2_0)
            c2_1 <- Fma.MultiplyAdd(a2, b1, c2_1)
            let a3 = Vector256.Create(NativePtr.get a 3)
            c3_0 <- Fma.MultiplyAdd(a3, b0, c3_0)
            c3_1 <- Fma.MultiplyAdd(a3, b1, c3_1)
            let a4 = Vector256.Create(NativePtr.get a 4)
            c4_0 <- Fma.MultiplyAdd(a4, b0, c4_0)
            c4_1 <- Fma.MultiplyAdd(a4, b1, c4_1)
            let a5 = Vector256.Create(NativePtr.get a 5)
            c5_0 <- Fma.MultiplyAdd(a5, b0, c5_0)
            c5_1 <- Fma.MultiplyAdd(a5, b1, c5_1)
            a <- NativePtr.add a 6
            b <- NativePtr.add b 16
            p <- p + 1

        r <- c

        if add then
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c0_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 8) + c0_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c1_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 8) + c1_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c2_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 8) + c2_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c3_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 8) + c3_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c4_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 8) + c4_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c5_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 8) + c5_1, NativePtr.add r 8)
        else
            Vector256.Store(c0_0, NativePtr.add r 0)
            Vector256.Store(c0_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(c1_0, NativePtr.add r 0)
            Vector256.Store(c1_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(c2_0, NativePtr.add r 0)
            Vector256.Store(c2_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(c3_0, NativePtr.add r 0)
            Vector256.Store(c3_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(c4_0, NativePtr.add r 0)
            Vector256.Store(c4_1, NativePtr.add r 8)
            r <- NativePtr.add r ldc
            Vector256.Store(c5_0, NativePtr.add r 0)
            Vector256.Store(c5_1, NativePtr.add r 8)

    /// AVX2+FMA float64 micro-kernel, 6×8: 12 ymm accumulators.
    /// Packed A sliver: kc×6 ([p][i]); packed B sliver: kc×8 ([p][j]).  c <- acc (+ c when add).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let kernelD256 (kc: int, pa: nativeptr<float>, pb: nativeptr<float>, c: nativeptr<float>, ldc: int, add: bool) =
        let mutable c0_0 = Vector256<float>.Zero
        let mutable c0_1 = Vector256<float>.Zero
        let mutable c1_0 = Vector256<float>.Zero
        let mutable c1_1 = Vector256<float>.Zero
        let mutable c2_0 = Vector256<float>.Zero
        let mutable c2_1 = Vector256<float>.Zero
        let mutable c3_0 = Vector256<float>.Zero
        let mutable c3_1 = Vector256<float>.Zero
        let mutable c4_0 = Vector256<float>.Zero
        let mutable c4_1 = Vector256<float>.Zero
        let mutable c5_0 = Vector256<float>.Zero
        let mutable c5_1 = Vector256<float>.Zero
        // Pull the C tile towards L1 while the FMAs run, so the final read-modify-write does not stall.
        let mutable r = c

        for _ in 1..6 do
            Sse.Prefetch0(NativePtr.toVoidPtr r)
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add r 4))
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add r 7))
            r <- NativePtr.add r ldc

        let mutable a = pa
        let mutable b = pb
        let mutable p = 0

        while p < kc do
            let b0 = Vector256.Load(NativePtr.add b 0)
            let b1 = Vector256.Load(NativePtr.add b 4)
            let a0 = Vector256.Create(NativePtr.get a 0)
            c0_0 <- Fma.MultiplyAdd(a0, b0, c0_0)
            c0_1 <- Fma.MultiplyAdd(a0, b1, c0_1)
            let a1 = Vector256.Create(NativePtr.get a 1)
            c1_0 <- Fma.MultiplyAdd(a1, b0, c1_0)
            c1_1 <- Fma.MultiplyAdd(a1, b1, c1_1)
            let a2 = Vector256.Create(NativePtr.get a 2)
            c2_0 <- Fma.MultiplyAdd(a2, b0, c2_0)
            c2_1 <- Fma.MultiplyAdd(a2, b1, c2_1)
            let a3 = Vector256.Create(NativePtr.get a 3)
            c3_0 <- Fma.MultiplyAdd(a3, b0, c3_0)
            c3_1 <- Fma.MultiplyAdd(a3, b1, c3_1)
            let a4 = Vector256.Create(NativePtr.get a 4)
            c4_0 <- Fma.MultiplyAdd(a4, b0, c4_0)
            c4_1 <- Fma.MultiplyAdd(a4, b1, c4_1)
            let a5 = Vector256.Create(NativePtr.get a 5)
            c5_0 <- Fma.MultiplyAdd(a5, b0, c5_0)
            c5_1 <- Fma.MultiplyAdd(a5, b1, c5_1)
            a <- NativePtr.add a 6
            b <- NativePtr.add b 8
            p <- p + 1

        r <- c

        if add then
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c0_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 4) + c0_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c1_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 4) + c1_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c2_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 4) + c2_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c3_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 4) + c3_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c4_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 4) + c4_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(Vector256.Load(NativePtr.add r 0) + c5_0, NativePtr.add r 0)
            Vector256.Store(Vector256.Load(NativePtr.add r 4) + c5_1, NativePtr.add r 4)
        else
            Vector256.Store(c0_0, NativePtr.add r 0)
            Vector256.Store(c0_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(c1_0, NativePtr.add r 0)
            Vector256.Store(c1_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(c2_0, NativePtr.add r 0)
            Vector256.Store(c2_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(c3_0, NativePtr.add r 0)
            Vector256.Store(c3_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(c4_0, NativePtr.add r 0)
            Vector256.Store(c4_1, NativePtr.add r 4)
            r <- NativePtr.add r ldc
            Vector256.Store(c5_0, NativePtr.add r 0)
            Vector256.Store(c5_1, NativePtr.add r 4)

    /// 16×16 float32 transpose: dst[j*ldd + i] <- src[i*lds + j] (i, j < 16), in zmm registers.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    let tr16x16f (src: nativeptr<float32>, lds: int, dst: nativeptr<float32>, ldd: int) =
        let r0 = Vector512.Load(NativePtr.add src (0 * lds))
        let r1 = Vector512.Load(NativePtr.add src (1 * lds))
        let r2 = Vector512.Load(NativePtr.add src (2 * lds))
        let r3 = Vector512.Load(NativePtr.add src (3 * lds))
        let r4 = Vector512.Load(NativePtr.add src (4 * lds))
        let r5 = Vector512.Load(NativePtr.add src (5 * lds))
        let r6 = Vector512.Load(NativePtr.add src (6 * lds))
        let r7 = Vector512.Load(NativePtr.add src (7 * lds))
        let r8 = Vector512.Load(NativePtr.add src (8 * lds))
        let r9 = Vector512.Load(NativePtr.add src (9 * lds))
        let r10 = Vector512.Load(NativePtr.add src (10 * lds))
        let r11 = Vector512.Load(NativePtr.add src (11 * lds))
        let r12 = Vector512.Load(NativePtr.add src (12 * lds))
        let r13 = Vector512.Load(NativePtr.add src (13 * lds))
        let r14 = Vector512.Load(NativePtr.add src (14 * lds))
        let r15 = Vector512.Load(NativePtr.add src (15 * lds))
        let t0 = Avx512F.UnpackLow(r0, r1).AsDouble()
        let t1 = Avx512F.UnpackHigh(r0, r1).AsDouble()
        let t2 = Avx512F.UnpackLow(r2, r3).AsDouble()
        let t3 = Avx512F.UnpackHigh(r2, r3).AsDouble()
        let t4 = Avx512F.UnpackLow(r4, r5).AsDouble()
        let t5 = Avx512F.UnpackHigh(r4, r5).AsDouble()
        let t6 = Avx512F.UnpackLow(r6, r7).AsDouble()
        let t7 = Avx512F.UnpackHigh(r6, r7).AsDouble()
        let t8 = Avx512F.UnpackLow(r8, r9).AsDouble()
        let t9 = Avx512F.UnpackHigh(r8, r9).AsDouble()
        let t10 = Avx512F.UnpackLow(r10, r11).AsDouble()
        let t11 = Avx512F.UnpackHigh(r10, r11).AsDouble()
        let t12 = Avx512F.UnpackLow(r12, r13).AsDouble()
        let t13 = Avx512F.UnpackHigh(r12, r13).AsDouble()
        let t14 = Avx512F.UnpackLow(r14, r15).AsDouble()
        let t15 = Avx512F.UnpackHigh(r14, r15).AsDouble()
        let u0 = Avx512F.UnpackLow(t0, t2).AsSingle()
        let u1 = Avx512F.UnpackHigh(t0, t2).AsSingle()
        let u2 = Avx512F.UnpackLow(t1, t3).AsSingle()
        let u3 = Avx512F.UnpackHigh(t1, t3).AsSingle()
        let u4 = Avx512F.UnpackLow(t4, t6).AsSingle()
        let u5 = Avx512F.UnpackHigh(t4, t6).AsSingle()
        let u6 = Avx512F.UnpackLow(t5, t7).AsSingle()
        let u7 = Avx512F.UnpackHigh(t5, t7).AsSingle()
        let u8 = Avx512F.UnpackLow(t8, t10).AsSingle()
        let u9 = Avx512F.UnpackHigh(t8, t10).AsSingle()
        let u10 = Avx512F.UnpackLow(t9, t11).AsSingle()
        let u11 = Avx512F.UnpackHigh(t9, t11).AsSingle()
        let u12 = Avx512F.UnpackLow(t12, t14).AsSingle()
        let u13 = Avx512F.UnpackHigh(t12, t14).AsSingle()
        let u14 = Avx512F.UnpackLow(t13, t15).AsSingle()
        let u15 = Avx512F.UnpackHigh(t13, t15).AsSingle()
        let v00 = Avx512F.Shuffle4x128(u0, u4, 0x88uy)
        let v01 = Avx512F.Shuffle4x128(u0, u4, 0xDDuy)
        let w00 = Avx512F.Shuffle4x128(u8, u12, 0x88uy)
        let w01 = Avx512F.Shuffle4x128(u8, u12, 0xDDuy)
        let v10 = Avx512F.Shuffle4x128(u1, u5, 0x88uy)
        let v11 = Avx512F.Shuffle4x128(u1, u5, 0xDDuy)
        let w10 = Avx512F.Shuffle4x128(u9, u13, 0x88uy)
        let w11 = Avx512F.Shuffle4x128(u9, u13, 0xDDuy)
        let v20 = Avx512F.Shuffle4x128(u2, u6, 0x88uy)
        let v21 = Avx512F.Shuffle4x128(u2, u6, 0xDDuy)
        let w20 = Avx512F.Shuffle4x128(u10, u14, 0x88uy)
        let w21 = Avx512F.Shuffle4x128(u10, u14, 0xDDuy)
        let v30 = Avx512F.Shuffle4x128(u3, u7, 0x88uy)
        let v31 = Avx512F.Shuffle4x128(u3, u7, 0xDDuy)
        let w30 = Avx512F.Shuffle4x128(u11, u15, 0x88uy)
        let w31 = Avx512F.Shuffle4x128(u11, u15, 0xDDuy)
        Vector512.Store(Avx512F.Shuffle4x128(v00, w00, 0x88uy), NativePtr.add dst (0 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v10, w10, 0x88uy), NativePtr.add dst (1 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v20, w20, 0x88uy), NativePtr.add dst (2 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v30, w30, 0x88uy), NativePtr.add dst (3 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v01, w01, 0x88uy), NativePtr.add dst (4 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v11, w11, 0x88uy), NativePtr.add dst (5 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v21, w21, 0x88uy), NativePtr.add dst (6 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v31, w31, 0x88uy), NativePtr.add dst (7 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v00, w00, 0xDDuy), NativePtr.add dst (8 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v10, w10, 0xDDuy), NativePtr.add dst (9 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v20, w20, 0xDDuy), NativePtr.add dst (10 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v30, w30, 0xDDuy), NativePtr.add dst (11 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v01, w01, 0xDDuy), NativePtr.add dst (12 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v11, w11, 0xDDuy), NativePtr.add dst (13 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v21, w21, 0xDDuy), NativePtr.add dst (14 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v31, w31, 0xDDuy), NativePtr.add dst (15 * ldd))

    /// 12×16 float32 transpose: dst[j*ldd + i] <- src[i*lds + j] for i < 12; each of the 16 stores also writes 4 zeros after its 12 values (so stores must go in increasing j with ldd = 12, and the last one spills 4 elements).
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    let tr12x16f (src: nativeptr<float32>, lds: int, dst: nativeptr<float32>, ldd: int) =
        let r0 = Vector512.Load(NativePtr.add src (0 * lds))
        let r1 = Vector512.Load(NativePtr.add src (1 * lds))
        let r2 = Vector512.Load(NativePtr.add src (2 * lds))
        let r3 = Vector512.Load(NativePtr.add src (3 * lds))
        let r4 = Vector512.Load(NativePtr.add src (4 * lds))
        let r5 = Vector512.Load(NativePtr.add src (5 * lds))
        let r6 = Vector512.Load(NativePtr.add src (6 * lds))
        let r7 = Vector512.Load(NativePtr.add src (7 * lds))
        let r8 = Vector512.Load(NativePtr.add src (8 * lds))
        let r9 = Vector512.Load(NativePtr.add src (9 * lds))
        let r10 = Vector512.Load(NativePtr.add src (10 * lds))
        let r11 = Vector512.Load(NativePtr.add src (11 * lds))
        let r12 = Vector512<float32>.Zero
        let r13 = Vector512<float32>.Zero
        let r14 = Vector512<float32>.Zero
        let r15 = Vector512<float32>.Zero
        let t0 = Avx512F.UnpackLow(r0, r1).AsDouble()
        let t1 = Avx512F.UnpackHigh(r0, r1).AsDouble()
        let t2 = Avx512F.UnpackLow(r2, r3).AsDouble()
        let t3 = Avx512F.UnpackHigh(r2, r3).AsDouble()
        let t4 = Avx512F.UnpackLow(r4, r5).AsDouble()
        let t5 = Avx512F.UnpackHigh(r4, r5).AsDouble()
        let t6 = Avx512F.UnpackLow(r6, r7).AsDouble()
        let t7 = Avx512F.UnpackHigh(r6, r7).AsDouble()
        let t8 = Avx512F.UnpackLow(r8, r9).AsDouble()
        let t9 = Avx512F.UnpackHigh(r8, r9).AsDouble()
        let t10 = Avx512F.UnpackLow(r10, r11).AsDouble()
        let t11 = Avx512F.UnpackHigh(r10, r11).AsDouble()
        let t12 = Avx512F.UnpackLow(r12, r13).AsDouble()
        let t13 = Avx512F.UnpackHigh(r12, r13).AsDouble()
        let t14 = Avx512F.UnpackLow(r14, r15).AsDouble()
        let t15 = Avx512F.UnpackHigh(r14, r15).AsDouble()
        let u0 = Avx512F.UnpackLow(t0, t2).AsSingle()
        let u1 = Avx512F.UnpackHigh(t0, t2).AsSingle()
        let u2 = Avx512F.UnpackLow(t1, t3).AsSingle()
        let u3 = Avx512F.UnpackHigh(t1, t3).AsSingle()
        let u4 = Avx512F.UnpackLow(t4, t6).AsSingle()
        let u5 = Avx512F.UnpackHigh(t4, t6).AsSingle()
        let u6 = Avx512F.UnpackLow(t5, t7).AsSingle()
        let u7 = Avx512F.UnpackHigh(t5, t7).AsSingle()
        let u8 = Avx512F.UnpackLow(t8, t10).AsSingle()
        let u9 = Avx512F.UnpackHigh(t8, t10).AsSingle()
        let u10 = Avx512F.UnpackLow(t9, t11).AsSingle()
        let u11 = Avx512F.UnpackHigh(t9, t11).AsSingle()
        let u12 = Avx512F.UnpackLow(t12, t14).AsSingle()
        let u13 = Avx512F.UnpackHigh(t12, t14).AsSingle()
        let u14 = Avx512F.UnpackLow(t13, t15).AsSingle()
        let u15 = Avx512F.UnpackHigh(t13, t15).AsSingle()
        let v00 = Avx512F.Shuffle4x128(u0, u4, 0x88uy)
        let v01 = Avx512F.Shuffle4x128(u0, u4, 0xDDuy)
        let w00 = Avx512F.Shuffle4x128(u8, u12, 0x88uy)
        let w01 = Avx512F.Shuffle4x128(u8, u12, 0xDDuy)
        let v10 = Avx512F.Shuffle4x128(u1, u5, 0x88uy)
        let v11 = Avx512F.Shuffle4x128(u1, u5, 0xDDuy)
        let w10 = Avx512F.Shuffle4x128(u9, u13, 0x88uy)
        let w11 = Avx512F.Shuffle4x128(u9, u13, 0xDDuy)
        let v20 = Avx512F.Shuffle4x128(u2, u6, 0x88uy)
        let v21 = Avx512F.Shuffle4x128(u2, u6, 0xDDuy)
        let w20 = Avx512F.Shuffle4x128(u10, u14, 0x88uy)
        let w21 = Avx512F.Shuffle4x128(u10, u14, 0xDDuy)
        let v30 = Avx512F.Shuffle4x128(u3, u7, 0x88uy)
        let v31 = Avx512F.Shuffle4x128(u3, u7, 0xDDuy)
        let w30 = Avx512F.Shuffle4x128(u11, u15, 0x88uy)
        let w31 = Avx512F.Shuffle4x128(u11, u15, 0xDDuy)
        Vector512.Store(Avx512F.Shuffle4x128(v00, w00, 0x88uy), NativePtr.add dst (0 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v10, w10, 0x88uy), NativePtr.add dst (1 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v20, w20, 0x88uy), NativePtr.add dst (2 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v30, w30, 0x88uy), NativePtr.add dst (3 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v01, w01, 0x88uy), NativePtr.add dst (4 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v11, w11, 0x88uy), NativePtr.add dst (5 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v21, w21, 0x88uy), NativePtr.add dst (6 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v31, w31, 0x88uy), NativePtr.add dst (7 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v00, w00, 0xDDuy), NativePtr.add dst (8 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v10, w10, 0xDDuy), NativePtr.add dst (9 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v20, w20, 0xDDuy), NativePtr.add dst (10 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v30, w30, 0xDDuy), NativePtr.add dst (11 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v01, w01, 0xDDuy), NativePtr.add dst (12 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v11, w11, 0xDDuy), NativePtr.add dst (13 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v21, w21, 0xDDuy), NativePtr.add dst (14 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v31, w31, 0xDDuy), NativePtr.add dst (15 * ldd))

    /// Eight columns of six float32 rows of A (row stride lds) into dst as eight groups of six
    /// ([p][i], the AVX2 plan's packed A sliver), by an 8×8 transpose in ymm registers with two zero
    /// rows: each group is stored as eight elements, in order, so that the next overwrites the two
    /// spare ones; the last writes two elements past the 48 (packA's spill room).
    let tr6x8f (src: nativeptr<float32>, lds: int, dst: nativeptr<float32>) =
        let r0 = Vector256.Load(NativePtr.add src (0 * lds))
        let r1 = Vector256.Load(NativePtr.add src (1 * lds))
        let r2 = Vector256.Load(NativePtr.add src (2 * lds))
        let r3 = Vector256.Load(NativePtr.add src (3 * lds))
        let r4 = Vector256.Load(NativePtr.add src (4 * lds))
        let r5 = Vector256.Load(NativePtr.add src (5 * lds))
        let z = Vector256<float32>.Zero
        // Per 128-bit lane: t0 = a0 b0 a1 b1, t1 = a2 b2 a3 b3 (a, b rows 0, 1), and so on.
        let t0, t1 = Avx.UnpackLow(r0, r1), Avx.UnpackHigh(r0, r1)
        let t2, t3 = Avx.UnpackLow(r2, r3), Avx.UnpackHigh(r2, r3)
        let t4, t5 = Avx.UnpackLow(r4, r5), Avx.UnpackHigh(r4, r5)
        // s_p = rows 0-3 of columns p and p + 4, s_{p+4} = rows 4-5 (and two zeros) of them.
        let s0, s1 = Avx.Shuffle(t0, t2, 0x44uy), Avx.Shuffle(t0, t2, 0xEEuy)
        let s2, s3 = Avx.Shuffle(t1, t3, 0x44uy), Avx.Shuffle(t1, t3, 0xEEuy)
        let s4, s5 = Avx.Shuffle(t4, z, 0x44uy), Avx.Shuffle(t4, z, 0xEEuy)
        let s6, s7 = Avx.Shuffle(t5, z, 0x44uy), Avx.Shuffle(t5, z, 0xEEuy)
        Vector256.Store(Avx.Permute2x128(s0, s4, 0x20uy), NativePtr.add dst 0)
        Vector256.Store(Avx.Permute2x128(s1, s5, 0x20uy), NativePtr.add dst 6)
        Vector256.Store(Avx.Permute2x128(s2, s6, 0x20uy), NativePtr.add dst 12)
        Vector256.Store(Avx.Permute2x128(s3, s7, 0x20uy), NativePtr.add dst 18)
        Vector256.Store(Avx.Permute2x128(s0, s4, 0x31uy), NativePtr.add dst 24)
        Vector256.Store(Avx.Permute2x128(s1, s5, 0x31uy), NativePtr.add dst 30)
        Vector256.Store(Avx.Permute2x128(s2, s6, 0x31uy), NativePtr.add dst 36)
        Vector256.Store(Avx.Permute2x128(s3, s7, 0x31uy), NativePtr.add dst 42)

    /// 8×8 float64 transpose: dst[j*ldd + i] <- src[i*lds + j] (i, j < 8), in zmm registers.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    let tr8x8d (src: nativeptr<float>, lds: int, dst: nativeptr<float>, ldd: int) =
        let r0 = Vector512.Load(NativePtr.add src (0 * lds))
        let r1 = Vector512.Load(NativePtr.add src (1 * lds))
        let r2 = Vector512.Load(NativePtr.add src (2 * lds))
        let r3 = Vector512.Load(NativePtr.add src (3 * lds))
        let r4 = Vector512.Load(NativePtr.add src (4 * lds))
        let r5 = Vector512.Load(NativePtr.add src (5 * lds))
        let r6 = Vector512.Load(NativePtr.add src (6 * lds))
        let r7 = Vector512.Load(NativePtr.add src (7 * lds))
        let t0 = Avx512F.UnpackLow(r0, r1)
        let t1 = Avx512F.UnpackHigh(r0, r1)
        let t2 = Avx512F.UnpackLow(r2, r3)
        let t3 = Avx512F.UnpackHigh(r2, r3)
        let t4 = Avx512F.UnpackLow(r4, r5)
        let t5 = Avx512F.UnpackHigh(r4, r5)
        let t6 = Avx512F.UnpackLow(r6, r7)
        let t7 = Avx512F.UnpackHigh(r6, r7)
        let v00 = Avx512F.Shuffle4x128(t0, t2, 0x88uy)
        let v01 = Avx512F.Shuffle4x128(t0, t2, 0xDDuy)
        let w00 = Avx512F.Shuffle4x128(t4, t6, 0x88uy)
        let w01 = Avx512F.Shuffle4x128(t4, t6, 0xDDuy)
        let v10 = Avx512F.Shuffle4x128(t1, t3, 0x88uy)
        let v11 = Avx512F.Shuffle4x128(t1, t3, 0xDDuy)
        let w10 = Avx512F.Shuffle4x128(t5, t7, 0x88uy)
        let w11 = Avx512F.Shuffle4x128(t5, t7, 0xDDuy)
        Vector512.Store(Avx512F.Shuffle4x128(v00, w00, 0x88uy), NativePtr.add dst (0 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v10, w10, 0x88uy), NativePtr.add dst (1 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v01, w01, 0x88uy), NativePtr.add dst (2 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v11, w11, 0x88uy), NativePtr.add dst (3 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v00, w00, 0xDDuy), NativePtr.add dst (4 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v10, w10, 0xDDuy), NativePtr.add dst (5 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v01, w01, 0xDDuy), NativePtr.add dst (6 * ldd))
        Vector512.Store(Avx512F.Shuffle4x128(v11, w11, 0xDDuy), NativePtr.add dst (7 * ldd))

    /// 12×8 float64 transpose into rows of 12: dst[j*12 + i] <- src[i*lds + j] for i < 12, j < 8; the stores run in increasing j and the last one spills 4 elements past row 7.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    let tr12x8d (src: nativeptr<float>, lds: int, dst: nativeptr<float>) =
        let ar0 = Vector512.Load(NativePtr.add src (0 * lds))
        let ar1 = Vector512.Load(NativePtr.add src (1 * lds))
        let ar2 = Vector512.Load(NativePtr.add src (2 * lds))
        let ar3 = Vector512.Load(NativePtr.add src (3 * lds))
        let ar4 = Vector512.Load(NativePtr.add src (4 * lds))
        let ar5 = Vector512.Load(NativePtr.add src (5 * lds))
        let ar6 = Vector512.Load(NativePtr.add src (6 * lds))
        let ar7 = Vector512.Load(NativePtr.add src (7 * lds))
        let at0 = Avx512F.UnpackLow(ar0, ar1)
        let at1 = Avx512F.UnpackHigh(ar0, ar1)
        let at2 = Avx512F.UnpackLow(ar2, ar3)
        let at3 = Avx512F.UnpackHigh(ar2, ar3)
        let at4 = Avx512F.UnpackLow(ar4, ar5)
        let at5 = Avx512F.UnpackHigh(ar4, ar5)
        let at6 = Avx512F.UnpackLow(ar6, ar7)
        let at7 = Avx512F.UnpackHigh(ar6, ar7)
        let av00 = Avx512F.Shuffle4x128(at0, at2, 0x88uy)
        let av01 = Avx512F.Shuffle4x128(at0, at2, 0xDDuy)
        let aw00 = Avx512F.Shuffle4x128(at4, at6, 0x88uy)
        let aw01 = Avx512F.Shuffle4x128(at4, at6, 0xDDuy)
        let av10 = Avx512F.Shuffle4x128(at1, at3, 0x88uy)
        let av11 = Avx512F.Shuffle4x128(at1, at3, 0xDDuy)
        let aw10 = Avx512F.Shuffle4x128(at5, at7, 0x88uy)
        let aw11 = Avx512F.Shuffle4x128(at5, at7, 0xDDuy)
        let br0 = Vector512.Load(NativePtr.add src (8 * lds))
        let br1 = Vector512.Load(NativePtr.add src (9 * lds))
        let br2 = Vector512.Load(NativePtr.add src (10 * lds))
        let br3 = Vector512.Load(NativePtr.add src (11 * lds))
        let br4 = Vector512<float>.Zero
        let br5 = Vector512<float>.Zero
        let br6 = Vector512<float>.Zero
        let br7 = Vector512<float>.Zero
        let bt0 = Avx512F.UnpackLow(br0, br1)
        let bt1 = Avx512F.UnpackHigh(br0, br1)
        let bt2 = Avx512F.UnpackLow(br2, br3)
        let bt3 = Avx512F.UnpackHigh(br2, br3)
        let bt4 = Avx512F.UnpackLow(br4, br5)
        let bt5 = Avx512F.UnpackHigh(br4, br5)
        let bt6 = Avx512F.UnpackLow(br6, br7)
        let bt7 = Avx512F.UnpackHigh(br6, br7)
        let bv00 = Avx512F.Shuffle4x128(bt0, bt2, 0x88uy)
        let bv01 = Avx512F.Shuffle4x128(bt0, bt2, 0xDDuy)
        let bw00 = Avx512F.Shuffle4x128(bt4, bt6, 0x88uy)
        let bw01 = Avx512F.Shuffle4x128(bt4, bt6, 0xDDuy)
        let bv10 = Avx512F.Shuffle4x128(bt1, bt3, 0x88uy)
        let bv11 = Avx512F.Shuffle4x128(bt1, bt3, 0xDDuy)
        let bw10 = Avx512F.Shuffle4x128(bt5, bt7, 0x88uy)
        let bw11 = Avx512F.Shuffle4x128(bt5, bt7, 0xDDuy)
        Vector512.Store(Avx512F.Shuffle4x128(av00, aw00, 0x88uy), NativePtr.add dst (0 * 12))
        Vector512.Store(Avx512F.Shuffle4x128(bv00, bw00, 0x88uy), NativePtr.add dst (0 * 12 + 8))
        Vector512.Store(Avx512F.Shuffle4x128(av10, aw10, 0x88uy), NativePtr.add dst (1 * 12))
        Vector512.Store(Avx512F.Shuffle4x128(bv10, bw10, 0x88uy), NativePtr.add dst (1 * 12 + 8))
        Vector512.Store(Avx512F.Shuffle4x128(av01, aw01, 0x88uy), NativePtr.add dst (2 * 12))
        Vector512.Store(Avx512F.Shuffle4x128(bv01, bw01, 0x88uy), NativePtr.add dst (2 * 12 + 8))
        Vector512.Store(Avx512F.Shuffle4x128(av11, aw11, 0x88uy), NativePtr.add dst (3 * 12))
        Vector512.Store(Avx512F.Shuffle4x128(bv11, bw11, 0x88uy), NativePtr.add dst (3 * 12 + 8))
        Vector512.Store(Avx512F.Shuffle4x128(av00, aw00, 0xDDuy), NativePtr.add dst (4 * 12))
        Vector512.Store(Avx512F.Shuffle4x128(bv00, bw00, 0xDDuy), NativePtr.add dst (4 * 12 + 8))
        Vector512.Store(Avx512F.Shuffle4x128(av10, aw10, 0xDDuy), NativePtr.add dst (5 * 12))
        Vector512.Store(Avx512F.Shuffle4x128(bv10, bw10, 0xDDuy), NativePtr.add dst (5 * 12 + 8))
        Vector512.Store(Avx512F.Shuffle4x128(av01, aw01, 0xDDuy), NativePtr.add dst (6 * 12))
        Vector512.Store(Avx512F.Shuffle4x128(bv01, bw01, 0xDDuy), NativePtr.add dst (6 * 12 + 8))
        Vector512.Store(Avx512F.Shuffle4x128(av11, aw11, 0xDDuy), NativePtr.add dst (7 * 12))
        Vector512.Store(Avx512F.Shuffle4x128(bv11, bw11, 0xDDuy), NativePtr.add dst (7 * 12 + 8))

    /// Portable float32 micro-kernel for any mr×nr (used when neither AVX-512 nor AVX2+FMA is available).
    let kernelSScalar
        (mr: int, nr: int, kc: int, pa: nativeptr<float32>, pb: nativeptr<float32>, c: nativeptr<float32>, ldc: int, add: bool)
        =
        let acc = NativePtr.stackalloc<float32> (mr * nr)

        for t in 0 .. mr * nr - 1 do
            NativePtr.set acc t 0.0f

        for p in 0 .. kc - 1 do
            let ap = NativePtr.add pa (p * mr)
            let bp = NativePtr.add pb (p * nr)

            for i in 0 .. mr - 1 do
                let av = NativePtr.get ap i
                let row = NativePtr.add acc (i * nr)

                for j in 0 .. nr - 1 do
                    NativePtr.set row j (NativePtr.get row j + av * NativePtr.get bp j)

        for i in 0 .. mr - 1 do
            let row = NativePtr.add c (i * ldc)

            for j in 0 .. nr - 1 do
                let v = NativePtr.get acc (i * nr + j)
                NativePtr.set row j (if add then NativePtr.get row j + v else v)

    /// Portable float64 micro-kernel for any mr×nr.
    let kernelDScalar (mr: int, nr: int, kc: int, pa: nativeptr<float>, pb: nativeptr<float>, c: nativeptr<float>, ldc: int, add: bool) =
        let acc = NativePtr.stackalloc<float> (mr * nr)

        for t in 0 .. mr * nr - 1 do
            NativePtr.set acc t 0.0

        for p in 0 .. kc - 1 do
            let ap = NativePtr.add pa (p * mr)
            let bp = NativePtr.add pb (p * nr)

            for i in 0 .. mr - 1 do
                let av = NativePtr.get ap i
                let row = NativePtr.add acc (i * nr)

                for j in 0 .. nr - 1 do
                    NativePtr.set row j (NativePtr.get row j + av * NativePtr.get bp j)

        for i in 0 .. mr - 1 do
            let row = NativePtr.add c (i * ldc)

            for j in 0 .. nr - 1 do
                let v = NativePtr.get acc (i * nr + j)
                NativePtr.set row j (if add then NativePtr.get row j + v else v)

    let inline private cast<'T, 'U when 'T: unmanaged and 'U: unmanaged> (p: nativeptr<'T>) : nativeptr<'U> =
        NativePtr.ofNativeInt<'U> (NativePtr.toNativeInt p)

    /// One mr×nr tile: C tile <- packed A sliver · packed B sliver (+ C tile when add).  'T is float32 or float.
    let inline private runKernel<'T when 'T: unmanaged>
        (plan: GemmPlan, kc: int, pa: nativeptr<'T>, pb: nativeptr<'T>, c: nativeptr<'T>, ldc: int, add: bool)
        =
        if sizeof<'T> = 4 then
            match plan.Kernel with
            | 2 -> kernelS512 (kc, cast pa, cast pb, cast c, ldc, add)
            | 1 -> kernelS256 (kc, cast pa, cast pb, cast c, ldc, add)
            | _ -> kernelSScalar (plan.Mr, plan.Nr, kc, cast pa, cast pb, cast c, ldc, add)
        else
            match plan.Kernel with
            | 2 -> kernelD512 (kc, cast pa, cast pb, cast c, ldc, add)
            | 1 -> kernelD256 (kc, cast pa, cast pb, cast c, ldc, add)
            | _ -> kernelDScalar (plan.Mr, plan.Nr, kc, cast pa, cast pb, cast c, ldc, add)

    /// Copies the valid rows×cols corner of a scratch tile (row stride nr) into C (adding when add).
    let private mergeTile<'T when 'T: unmanaged>
        (tile: nativeptr<'T>, nr: int, c: nativeptr<'T>, ldc: int, rows: int, cols: int, add: bool)
        =
        if sizeof<'T> = 4 then
            let tile: nativeptr<float32> = cast tile
            let c: nativeptr<float32> = cast c

            for i in 0 .. rows - 1 do
                let src = NativePtr.add tile (i * nr)
                let dst = NativePtr.add c (i * ldc)

                for j in 0 .. cols - 1 do
                    NativePtr.set
                        dst
                        j
                        (if add then
                             NativePtr.get dst j + NativePtr.get src j
                         else
                             NativePtr.get src j)
        else
            let tile: nativeptr<float> = cast tile
            let c: nativeptr<float> = cast c

            for i in 0 .. rows - 1 do
                let src = NativePtr.add tile (i * nr)
                let dst = NativePtr.add c (i * ldc)

                for j in 0 .. cols - 1 do
                    NativePtr.set
                        dst
                        j
                        (if add then
                             NativePtr.get dst j + NativePtr.get src j
                         else
                             NativePtr.get src j)

    /// Copies `bytes` bytes (a multiple of 4) from src to dst: 32 bytes at a time, then 16, 8 and 4.
    let inline private copyBytes (src: nativeptr<byte>, dst: nativeptr<byte>, bytes: int) =
        let mutable o = 0

        while o + 32 <= bytes do
            Vector256.Store(Vector256.Load(NativePtr.add src o), NativePtr.add dst o)
            o <- o + 32

        if o + 16 <= bytes then
            Vector128.Store(Vector128.Load(NativePtr.add src o), NativePtr.add dst o)
            o <- o + 16

        if o + 8 <= bytes then
            NativePtr.write
                (NativePtr.ofNativeInt<int64> (NativePtr.toNativeInt (NativePtr.add dst o)))
                (NativePtr.read (NativePtr.ofNativeInt<int64> (NativePtr.toNativeInt (NativePtr.add src o))))

            o <- o + 8

        if o + 4 <= bytes then
            NativePtr.write
                (NativePtr.ofNativeInt<int32> (NativePtr.toNativeInt (NativePtr.add dst o)))
                (NativePtr.read (NativePtr.ofNativeInt<int32> (NativePtr.toNativeInt (NativePtr.add src o))))

    /// Packs op(A)[i0 .. i0+mb-1, p0 .. p0+kb-1] into mr-row slivers, each kb×mr with element (i, p) at p*mr + i;
    /// rows past mb are zero.  op(A)[i, p] = a[i*lda + p], or a[p*lda + i] when transA.  With wide (the AVX-512
    /// plan, mr = 12) full slivers of a non-transposed A are transposed 16 (float32) or 8 (float64) columns at a
    /// time in registers, and with the AVX2 float32 plan (mr = 6) full slivers 8 columns at a time (tr6x8f); the
    /// destination then needs 16 spare elements after its end.
    let packA<'T when 'T: unmanaged>
        (wide: bool, transA: bool, a: nativeptr<'T>, lda: int, i0: int, p0: int, mb: int, kb: int, mr: int, dst: nativeptr<'T>)
        =
        let zero = Unchecked.defaultof<'T>
        let mutable d = dst
        let mutable ir = 0

        while ir < mb do
            let rows = min mr (mb - ir)

            if not transA then
                let src0 = NativePtr.add a ((i0 + ir) * lda + p0)
                let mutable p0' = 0

                if wide && rows = 12 && mr = 12 then
                    if sizeof<'T> = 4 then
                        while p0' + 16 <= kb do
                            tr12x16f (cast (NativePtr.add src0 p0'), lda, cast (NativePtr.add d (p0' * 12)), 12)
                            p0' <- p0' + 16
                    else
                        while p0' + 8 <= kb do
                            tr12x8d (cast (NativePtr.add src0 p0'), lda, cast (NativePtr.add d (p0' * 12)))
                            p0' <- p0' + 8
                elif sizeof<'T> = 4 && rows = 6 && mr = 6 && Avx.IsSupported then
                    while p0' + 8 <= kb do
                        tr6x8f (cast (NativePtr.add src0 p0'), lda, cast (NativePtr.add d (p0' * 6)))
                        p0' <- p0' + 8

                for ii in 0 .. rows - 1 do
                    let src = NativePtr.add src0 (ii * lda)
                    let mutable q = NativePtr.add d (p0' * mr + ii)

                    for p in p0' .. kb - 1 do
                        NativePtr.write q (NativePtr.get src p)
                        q <- NativePtr.add q mr

                for ii in rows .. mr - 1 do
                    for p in 0 .. kb - 1 do
                        NativePtr.set d (p * mr + ii) zero
            else
                for p in 0 .. kb - 1 do
                    let src = NativePtr.add a ((p0 + p) * lda + i0 + ir)
                    let q = NativePtr.add d (p * mr)

                    if rows = mr then
                        copyBytes (cast src, cast q, mr * sizeof<'T>)
                    else
                        for ii in 0 .. rows - 1 do
                            NativePtr.set q ii (NativePtr.get src ii)

                        for ii in rows .. mr - 1 do
                            NativePtr.set q ii zero

            d <- NativePtr.add d (mr * kb)
            ir <- ir + mr

    /// Packs op(B)[p0 .. p0+kb-1, j0 .. j0+nb-1] into nr-column slivers, each kb×nr with element (p, j) at
    /// p*nr + j; columns past nb are zero.  op(B)[p, j] = b[p*ldb + j], or b[j*ldb + p] when transB.  With wide
    /// (the AVX-512 plan, nr = 32 float32 or 16 float64), full slivers of a transposed B are transposed in registers.
    let packB<'T when 'T: unmanaged>
        (wide: bool, transB: bool, b: nativeptr<'T>, ldb: int, p0: int, j0: int, kb: int, nb: int, nr: int, dst: nativeptr<'T>)
        =
        let zero = Unchecked.defaultof<'T>
        let mutable d = dst
        let mutable jr = 0

        // The whole slivers of a non-transposed B row by row of B, each row's pieces to every
        // sliver: B is read in order, where sliver by sliver it was read a cache line per row at the
        // row stride (4 KB at n = 1024: every line in one L1 set), the packing's largest cost on Zen 3.
        if not transB then
            let full = nb / nr * nr

            for p in 0 .. kb - 1 do
                let src = NativePtr.add b ((p0 + p) * ldb + j0)
                let mutable j = 0

                while j < full do
                    copyBytes (cast (NativePtr.add src j), cast (NativePtr.add dst (j * kb + p * nr)), nr * sizeof<'T>)
                    j <- j + nr

            jr <- full
            d <- NativePtr.add dst (full * kb)

        while jr < nb do
            let cols = min nr (nb - jr)

            if not transB then
                // The last, partial sliver (the whole ones were packed above), zero past nb.
                for p in 0 .. kb - 1 do
                    let src = NativePtr.add b ((p0 + p) * ldb + j0 + jr)
                    let q = NativePtr.add d (p * nr)

                    for jj in 0 .. cols - 1 do
                        NativePtr.set q jj (NativePtr.get src jj)

                    for jj in cols .. nr - 1 do
                        NativePtr.set q jj zero
            else
                let src0 = NativePtr.add b ((j0 + jr) * ldb + p0)
                let mutable p0' = 0

                if wide && cols = nr then
                    if sizeof<'T> = 4 && nr = 32 then
                        while p0' + 16 <= kb do
                            let s = NativePtr.add src0 p0'
                            let q = NativePtr.add d (p0' * 32)
                            tr16x16f (cast s, ldb, cast q, 32)
                            tr16x16f (cast (NativePtr.add s (16 * ldb)), ldb, cast (NativePtr.add q 16), 32)
                            p0' <- p0' + 16
                    elif sizeof<'T> = 8 && nr = 16 then
                        while p0' + 8 <= kb do
                            let s = NativePtr.add src0 p0'
                            let q = NativePtr.add d (p0' * 16)
                            tr8x8d (cast s, ldb, cast q, 16)
                            tr8x8d (cast (NativePtr.add s (8 * ldb)), ldb, cast (NativePtr.add q 8), 16)
                            p0' <- p0' + 8

                for jj in 0 .. cols - 1 do
                    let src = NativePtr.add src0 (jj * ldb)
                    let mutable q = NativePtr.add d (p0' * nr + jj)

                    for p in p0' .. kb - 1 do
                        NativePtr.write q (NativePtr.get src p)
                        q <- NativePtr.add q nr

                for jj in cols .. nr - 1 do
                    for p in 0 .. kb - 1 do
                        NativePtr.set d (p * nr + jj) zero

            d <- NativePtr.add d (nr * kb)
            jr <- jr + nr

    let inline private roundUp (x: int) (q: int) = (x + q - 1) / q * q

    /// Blocking for this machine's instruction set; 'T is float32 (elemSize 4) or float (8).
    let planFor (elemSize: int) : GemmPlan =
        if Vector512.IsHardwareAccelerated && Avx512F.IsSupported then
            if elemSize = 4 then
                {
                    Mr = 12
                    Nr = 32
                    Kc = 256
                    Mc = 240
                    Nc = 4096
                    Kernel = 2
                }
            else
                {
                    Mr = 12
                    Nr = 16
                    Kc = 256
                    Mc = 120
                    Nc = 2048
                    Kernel = 2
                }
        elif Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported then
            if elemSize = 4 then
                {
                    Mr = 6
                    Nr = 16
                    Kc = 256
                    Mc = 96
                    Nc = 2048
                    Kernel = 1
                }
            else
                {
                    Mr = 6
                    Nr = 8
                    Kc = 256
                    Mc = 48
                    Nc = 1024
                    Kernel = 1
                }
        else
            {
                Mr = 4
                Nr = 4
                Kc = 256
                Mc = 64
                Nc = 1024
                Kernel = 0
            }

    let planS = planFor 4
    let planD = planFor 8

    /// Single-threaded packed GEMM on raw pointers (a, b, c already point at element (0, 0)).  m, n, k > 0.
    let gemmSerial<'T when 'T: unmanaged>
        (
            plan: GemmPlan,
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            a: nativeptr<'T>,
            lda: int,
            b: nativeptr<'T>,
            ldb: int,
            c: nativeptr<'T>,
            ldc: int,
            accumulate: bool
        ) =
        let mr = plan.Mr
        let nr = plan.Nr
        let wide = plan.Kernel = 2
        let kcMax = min plan.Kc k
        let mcMax = min plan.Mc (roundUp m mr)
        let ncMax = min plan.Nc (roundUp n nr)
        let size = int64 sizeof<'T>
        let aElems = int64 (roundUp mcMax mr) * int64 kcMax
        let bElems = int64 (roundUp ncMax nr) * int64 kcMax
        let tileElems = int64 (mr * nr)
        let aBytes = (aElems * size + 64L * size + 63L) &&& ~~~63L // + spare elements for packA's spill
        let bBytes = (bElems * size + 63L) &&& ~~~63L
        let basePtr = GemmScratchStore.Current.Get(aBytes + bBytes + tileElems * size)
        let pa = NativePtr.ofNativeInt<'T> basePtr
        let pb = NativePtr.ofNativeInt<'T> (basePtr + nativeint aBytes)
        let tile = NativePtr.ofNativeInt<'T> (basePtr + nativeint (aBytes + bBytes))
        let mutable jc = 0

        while jc < n do
            let nb = min ncMax (n - jc)
            let mutable pc = 0

            while pc < k do
                let kb = min kcMax (k - pc)
                let add = accumulate || pc > 0
                packB (wide, transB, b, ldb, pc, jc, kb, nb, nr, pb)
                let mutable ic = 0

                while ic < m do
                    let mb = min mcMax (m - ic)
                    packA (wide, transA, a, lda, ic, pc, mb, kb, mr, pa)
                    let mutable jr = 0

                    while jr < nb do
                        let cols = min nr (nb - jr)
                        let bs = NativePtr.add pb (jr * kb)
                        let mutable ir = 0

                        while ir < mb do
                            let rows = min mr (mb - ir)
                            let as' = NativePtr.add pa (ir * kb)
                            let ct = NativePtr.add c ((ic + ir) * ldc + jc + jr)

                            if rows = mr && cols = nr then
                                runKernel (plan, kb, as', bs, ct, ldc, add)
                            else
                                runKernel (plan, kb, as', bs, tile, nr, false)
                                mergeTile (tile, nr, ct, ldc, rows, cols, add)

                            ir <- ir + mr

                        jr <- jr + nr

                    ic <- ic + mb

                pc <- pc + kb

            jc <- jc + nb

    /// Problems with m·n·k below this run on one thread (fork-join would cost more than it saves).
    let parallelThreshold = 100L * 100L * 100L

    /// Runs body 0 .. body (t-1) concurrently, body 0 on the calling thread, each with a fixed share.
    let forkJoin (t: int) (body: int -> unit) = GemmPool.Instance.Run(t, body)

    /// Multi-threaded GEMM on raw addresses: the threads take disjoint ranges of C columns (when n >= m) or rows.
    let gemmPtr<'T when 'T: unmanaged>
        (
            plan: GemmPlan,
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            a: nativeint,
            lda: int,
            b: nativeint,
            ldb: int,
            c: nativeint,
            ldc: int,
            accumulate: bool,
            threads: int
        ) =
        let work = int64 m * int64 n * int64 k
        let splitN = n >= m

        let units =
            if splitN then
                (n + plan.Nr - 1) / plan.Nr
            else
                (m + plan.Mr - 1) / plan.Mr

        let t =
            if work < parallelThreshold then
                1
            else
                max 1 (min (min threads Environment.ProcessorCount) units)

        if t = 1 then
            gemmSerial<'T> (
                plan,
                transA,
                transB,
                m,
                n,
                k,
                NativePtr.ofNativeInt a,
                lda,
                NativePtr.ofNativeInt b,
                ldb,
                NativePtr.ofNativeInt c,
                ldc,
                accumulate
            )
        else
            let size = nativeint sizeof<'T>
            // Units (nr-wide column slivers or mr-tall row slivers) per thread, spread as evenly as possible.
            let per = units / t
            let extra = units % t

            let body (w: int) =
                let u0 = w * per + min w extra
                let u1 = u0 + per + (if w < extra then 1 else 0)

                if splitN then
                    let j0 = u0 * plan.Nr
                    let j1 = min n (u1 * plan.Nr)

                    let bOff =
                        if transB then
                            nativeint j0 * nativeint ldb
                        else
                            nativeint j0

                    gemmSerial<'T> (
                        plan,
                        transA,
                        transB,
                        m,
                        j1 - j0,
                        k,
                        NativePtr.ofNativeInt a,
                        lda,
                        NativePtr.ofNativeInt (b + bOff * size),
                        ldb,
                        NativePtr.ofNativeInt (c + nativeint j0 * size),
                        ldc,
                        accumulate
                    )
                else
                    let i0 = u0 * plan.Mr
                    let i1 = min m (u1 * plan.Mr)

                    let aOff =
                        if transA then
                            nativeint i0
                        else
                            nativeint i0 * nativeint lda

                    gemmSerial<'T> (
                        plan,
                        transA,
                        transB,
                        i1 - i0,
                        n,
                        k,
                        NativePtr.ofNativeInt (a + aOff * size),
                        lda,
                        NativePtr.ofNativeInt b,
                        ldb,
                        NativePtr.ofNativeInt (c + nativeint i0 * nativeint ldc * size),
                        ldc,
                        accumulate
                    )

            forkJoin t body

    /// C[m×n] <- 0 (row stride ldc), used when k = 0 and not accumulating.
    let clearC<'T when 'T: unmanaged> (c: nativeint, ldc: int, m: int, n: int) =
        for i in 0 .. m - 1 do
            let row =
                NativePtr.ofNativeInt<'T> (c + nativeint i * nativeint ldc * nativeint sizeof<'T>)

            for j in 0 .. n - 1 do
                NativePtr.set row j Unchecked.defaultof<'T>

    // ---------------------------------------------------------------------------------------------------------
    // Argument validation
    // ---------------------------------------------------------------------------------------------------------

    let private fail (op: string) (param: string) (msg: string) : unit =
        raise (ArgumentException($"Gemm.%s{op}: %s{msg}", param))

    /// Checks that one operand (rows×cols stored with row stride ld, `batch` copies strideApart) fits its array.
    let private checkOperand
        (op: string)
        (name: string)
        (arr: 'T[])
        (offset: int)
        (ld: int)
        (stride: int)
        (batch: int)
        (rows: int)
        (cols: int)
        (shape: string)
        =
        // name is "A", "B" or "C"; the lower-case names are built only when there is something to report
        let arrName () = name.ToLowerInvariant()
        let offName () = arrName () + "Offset"

        if isNull arr then
            raise (ArgumentNullException(arrName (), $"Gemm.%s{op}: array %s{arrName ()} is null"))

        if offset < 0 then
            fail op (offName ()) $"%s{offName ()} = %d{offset} is negative"

        if offset > arr.Length then
            fail op (offName ()) $"%s{offName ()} = %d{offset} is past the end of %s{arrName ()} (length %d{arr.Length})"

        if rows > 0 && cols > 0 && batch > 0 then
            let need =
                int64 offset
                + int64 (batch - 1) * int64 stride
                + int64 (rows - 1) * int64 ld
                + int64 cols

            if need > int64 arr.Length then
                let batchPart =
                    if batch > 1 then
                        $", batch = %d{batch}, stride%s{name} = %d{stride}"
                    else
                        ""

                fail
                    op
                    (arrName ())
                    ($"array %s{arrName ()} (length %d{arr.Length}) is too short for %s{name} (%s{shape}): "
                     + $"%s{offName ()} = %d{offset}, ld%s{arrName ()} = %d{ld}%s{batchPart} need %d{need} elements")

    /// Validates every argument of a (batched) GEMM call; op names the public operation in messages.
    let validate
        (op: string)
        (transA: bool)
        (transB: bool)
        (batch: int)
        (m: int)
        (n: int)
        (k: int)
        (a: 'T[])
        (aOffset: int)
        (lda: int)
        (strideA: int)
        (b: 'T[])
        (bOffset: int)
        (ldb: int)
        (strideB: int)
        (c: 'T[])
        (cOffset: int)
        (ldc: int)
        (strideC: int)
        =
        if batch < 0 then
            fail op "batch" $"batch = %d{batch} is negative"

        if m < 0 then
            fail op "m" $"m = %d{m} is negative"

        if n < 0 then
            fail op "n" $"n = %d{n} is negative"

        if k < 0 then
            fail op "k" $"k = %d{k} is negative"

        if strideA < 0 then
            fail op "strideA" $"strideA = %d{strideA} is negative"

        if strideB < 0 then
            fail op "strideB" $"strideB = %d{strideB} is negative"

        if strideC < 0 then
            fail op "strideC" $"strideC = %d{strideC} is negative"

        if transA then
            if lda < m then
                fail op "lda" $"lda = %d{lda} is smaller than m = %d{m} for A (k×m, transposed)"
        elif lda < k then
            fail op "lda" $"lda = %d{lda} is smaller than k = %d{k} for A (m×k, not transposed)"

        if transB then
            if ldb < k then
                fail op "ldb" $"ldb = %d{ldb} is smaller than k = %d{k} for B (n×k, transposed)"
        elif ldb < n then
            fail op "ldb" $"ldb = %d{ldb} is smaller than n = %d{n} for B (k×n, not transposed)"

        if ldc < n then
            fail op "ldc" $"ldc = %d{ldc} is smaller than n = %d{n} for C (m×n)"

        if transA then
            checkOperand op "A" a aOffset lda strideA batch k m "k×m, transposed"
        else
            checkOperand op "A" a aOffset lda strideA batch m k "m×k, not transposed"

        if transB then
            checkOperand op "B" b bOffset ldb strideB batch n k "n×k, transposed"
        else
            checkOperand op "B" b bOffset ldb strideB batch k n "k×n, not transposed"

        checkOperand op "C" c cOffset ldc strideC batch m n "m×n"

    let resolveThreads (threads: int option) =
        match threads with
        | Some t when t > 0 -> t
        | _ -> Parallelism.MaxThreads

    /// One validated GEMM on arrays (m, n, k may be zero).
    let gemmArrays<'T when 'T: unmanaged>
        (
            plan: GemmPlan,
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            a: 'T[],
            aOffset: int,
            lda: int,
            b: 'T[],
            bOffset: int,
            ldb: int,
            c: 'T[],
            cOffset: int,
            ldc: int,
            accumulate: bool,
            threads: int
        ) =
        if m > 0 && n > 0 then
            let size = nativeint sizeof<'T>
            use pc = fixed c
            let cAddr = NativePtr.toNativeInt pc + nativeint cOffset * size

            if k = 0 then
                if not accumulate then
                    clearC<'T> (cAddr, ldc, m, n)
            else
                use pa = fixed a
                use pb = fixed b

                gemmPtr<'T> (
                    plan,
                    transA,
                    transB,
                    m,
                    n,
                    k,
                    NativePtr.toNativeInt pa + nativeint aOffset * size,
                    lda,
                    NativePtr.toNativeInt pb + nativeint bOffset * size,
                    ldb,
                    cAddr,
                    ldc,
                    accumulate,
                    threads
                )

    /// Validated batched GEMM.  Folds broadcast-B batches with row-contiguous A and C into one taller GEMM;
    /// otherwise runs big products one after another (each multi-threaded) and spreads small ones over threads.
    let gemmBatchedArrays<'T when 'T: unmanaged>
        (
            plan: GemmPlan,
            transA: bool,
            transB: bool,
            batch: int,
            m: int,
            n: int,
            k: int,
            a: 'T[],
            aOffset: int,
            lda: int,
            strideA: int,
            b: 'T[],
            bOffset: int,
            ldb: int,
            strideB: int,
            c: 'T[],
            cOffset: int,
            ldc: int,
            strideC: int,
            accumulate: bool,
            threads: int
        ) =
        if batch > 0 && m > 0 && n > 0 then
            let foldable =
                batch > 1
                && not transA
                && strideB = 0
                && int64 strideA = int64 m * int64 lda
                && int64 strideC = int64 m * int64 ldc
                && int64 batch * int64 m <= int64 Int32.MaxValue

            if foldable || batch = 1 then
                let rows = if foldable then batch * m else m
                gemmArrays<'T> (plan, transA, transB, rows, n, k, a, aOffset, lda, b, bOffset, ldb, c, cOffset, ldc, accumulate, threads)
            else
                let work = int64 m * int64 n * int64 k
                // C items must not overlap for the items to run concurrently.
                let disjoint = int64 strideC >= int64 (m - 1) * int64 ldc + int64 n

                if threads <= 1 || not disjoint || work >= parallelThreshold * 8L then
                    for i in 0 .. batch - 1 do
                        gemmArrays<'T> (
                            plan,
                            transA,
                            transB,
                            m,
                            n,
                            k,
                            a,
                            aOffset + i * strideA,
                            lda,
                            b,
                            bOffset + i * strideB,
                            ldb,
                            c,
                            cOffset + i * strideC,
                            ldc,
                            accumulate,
                            threads
                        )
                else
                    let t = min (min threads Environment.ProcessorCount) batch

                    forkJoin t (fun w ->
                        let mutable i = w

                        while i < batch do
                            gemmArrays<'T> (
                                plan,
                                transA,
                                transB,
                                m,
                                n,
                                k,
                                a,
                                aOffset + i * strideA,
                                lda,
                                b,
                                bOffset + i * strideB,
                                ldb,
                                c,
                                cOffset + i * strideC,
                                ldc,
                                accumulate,
                                1
                            )

                            i <- i + t)

open GemmImpl

/// General matrix multiplication, row-major, float32 (S) and float64 (D).
[<AbstractClass; Sealed>]
type Gemm =
    /// Row-major C[m×n] <- op(A)·op(B) (+ C when accumulate).  op(A) is m×k: A stored m×k with row stride lda
    /// when transA = false, or stored k×m (row stride lda) when transA = true. op(B) is k×n: B stored k×n
    /// (row stride ldb) or n×k when transB = true.  threads <= 0 means Parallelism.MaxThreads.
    static member Sgemm
        (
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            a: float32[],
            aOffset: int,
            lda: int,
            b: float32[],
            bOffset: int,
            ldb: int,
            c: float32[],
            cOffset: int,
            ldc: int,
            accumulate: bool,
            ?threads: int
        ) =
        validate "Sgemm" transA transB 1 m n k a aOffset lda 0 b bOffset ldb 0 c cOffset ldc 0
        gemmArrays (planS, transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, c, cOffset, ldc, accumulate, resolveThreads threads)

    /// Row-major C[m×n] <- op(A)·op(B) (+ C when accumulate) in float64; arguments as for Sgemm.
    static member Dgemm
        (
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            a: float[],
            aOffset: int,
            lda: int,
            b: float[],
            bOffset: int,
            ldb: int,
            c: float[],
            cOffset: int,
            ldc: int,
            accumulate: bool,
            ?threads: int
        ) =
        validate "Dgemm" transA transB 1 m n k a aOffset lda 0 b bOffset ldb 0 c cOffset ldc 0
        gemmArrays (planD, transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, c, cOffset, ldc, accumulate, resolveThreads threads)

    /// batch independent float32 products; A_i starts at aOffset + i*strideA (strideA = 0 broadcasts one A),
    /// likewise B_i and C_i.  Other arguments as for Sgemm.
    static member SgemmBatched
        (
            transA: bool,
            transB: bool,
            batch: int,
            m: int,
            n: int,
            k: int,
            a: float32[],
            aOffset: int,
            lda: int,
            strideA: int,
            b: float32[],
            bOffset: int,
            ldb: int,
            strideB: int,
            c: float32[],
            cOffset: int,
            ldc: int,
            strideC: int,
            accumulate: bool,
            ?threads: int
        ) =
        validate "SgemmBatched" transA transB batch m n k a aOffset lda strideA b bOffset ldb strideB c cOffset ldc strideC

        gemmBatchedArrays (
            planS,
            transA,
            transB,
            batch,
            m,
            n,
            k,
            a,
            aOffset,
            lda,
            strideA,
            b,
            bOffset,
            ldb,
            strideB,
            c,
            cOffset,
            ldc,
            strideC,
            accumulate,
            resolveThreads threads
        )

    /// batch independent float64 products; arguments as for SgemmBatched.
    static member DgemmBatched
        (
            transA: bool,
            transB: bool,
            batch: int,
            m: int,
            n: int,
            k: int,
            a: float[],
            aOffset: int,
            lda: int,
            strideA: int,
            b: float[],
            bOffset: int,
            ldb: int,
            strideB: int,
            c: float[],
            cOffset: int,
            ldc: int,
            strideC: int,
            accumulate: bool,
            ?threads: int
        ) =
        validate "DgemmBatched" transA transB batch m n k a aOffset lda strideA b bOffset ldb strideB c cOffset ldc strideC

        gemmBatchedArrays (
            planD,
            transA,
            transB,
            batch,
            m,
            n,
            k,
            a,
            aOffset,
            lda,
            strideA,
            b,
            bOffset,
            ldb,
            strideB,
            c,
            cOffset,
            ldc,
            strideC,
            accumulate,
            resolveThreads threads
        )

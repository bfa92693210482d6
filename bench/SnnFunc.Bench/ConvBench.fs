/// conv2d on MNIST-sized shapes (batch 64; 1 -> 16 channels on 28 x 28, 16 -> 32 on 14 x 14; 3 x 3
/// and 5 x 5 kernels with "same" padding; Float32): median milliseconds of the forward pass and of
/// forward + backward (the gradients with respect to input and weights), one line per shape in the
/// format of bench/peers/torch_conv.py.
module ConvBench

open System
open SnnFunc

/// (input channels, output channels, height = width, kernel); padding k / 2, stride 1, bias.
let shapes = [ 1, 16, 28, 3; 1, 16, 28, 5; 16, 32, 14, 3; 16, 32, 14, 5 ]

let batch = 64

let private arg (argv: string[]) name fallback =
    match Array.tryFindIndex ((=) name) argv with
    | Some i when i + 1 < argv.Length -> argv[i + 1]
    | _ -> fallback

/// A Float32 tensor of N(0, 1) values from a seed.
let private normal (seed: int64) (shape: int[]) = Random.normal (Random.key seed) shape

/// The flops of one forward convolution (2 per multiply-add) and the bytes it must at least move
/// (input, weights and output once, Float32).
let private roofline (cin: int) (cout: int) (hw: int) (k: int) =
    let outputs = float (batch * cout * hw * hw)
    let flops = 2.0 * outputs * float (cin * k * k)

    let bytes =
        4.0 * (float (batch * cin * hw * hw) + float (cout * cin * k * k) + outputs)

    flops, bytes

/// The GC settings that change these figures (see docs/performance.md, "Convolution").
let private gcSettings () =
    let config = GC.GetConfigurationVariables()

    let value name =
        match config.TryGetValue name with
        | true, v -> string v
        | _ -> "<default>"

    let loh = value "LOHThreshold"

    $"# gc server=%b{Runtime.GCSettings.IsServerGC} LOHThreshold=%s{loh} cores=%d{Environment.ProcessorCount} avx512=%b{Runtime.Intrinsics.Vector512.IsHardwareAccelerated}"

let run (argv: string[]) =
    let threads = int (arg argv "--threads" "2")
    let reps = int (arg argv "--reps" "31")
    let clock = Timing.Clock.Parse(arg argv "--clock" "wall")
    Kernels.Parallelism.MaxThreads <- threads
    printfn "%s clock=%A" (gcSettings ()) clock

    // Two passes over the shapes, the first untimed: the first shape's figures included the
    // tiered JIT's warm-up (its forward measured 2-4x slower than in the second pass when the
    // machine was loaded, where the background recompilation waits for a core).
    for pass in [ 0; 1 ] do
        for cin, cout, hw, k in shapes do
            let x = normal 1L [| batch; cin; hw; hw |]
            let w = normal 2L [| cout; cin; k; k |] * (1.0 / sqrt (float (cin * k * k)))
            let b = normal 3L [| cout |]

            let options =
                { Conv2dOptions.Default with
                    Padding = (k / 2, k / 2)
                }

            let conv (x: Tensor, w: Tensor) = Conv.conv2dWith options w (Some b) x
            let ct = normal 4L [| batch; cout; hw; hw |]

            let forward =
                Timing.medianBy clock 10 (if pass = 0 then 1 else reps) (fun () -> conv (x, w) |> ignore)

            let forwardBackward =
                Timing.medianBy clock 10 (if pass = 0 then 1 else reps) (fun () ->
                    let _, pullback = Ad.vjp conv (x, w)
                    pullback ct |> ignore)

            let flops, _ = roofline cin cout hw k

            if pass = 1 then
                printfn
                    "conv n=%d cin=%d cout=%d hw=%d k=%d fwd_ms=%.3f fwdbwd_ms=%.3f fwd_gflops=%.1f"
                    batch
                    cin
                    cout
                    hw
                    k
                    (forward * 1000.0)
                    (forwardBackward * 1000.0)
                    (flops / forward / 1e9)

    0

/// Where the time of one shape goes: the three kernels alone on preallocated buffers (forward,
/// input gradient, weight gradient), then the tensor-level calls (which add the output
/// allocations and, under vjp, the recording and the cotangent bookkeeping).
let profile (argv: string[]) =
    let threads = int (arg argv "--threads" "2")
    let reps = int (arg argv "--reps" "31")
    let clock = Timing.Clock.Parse(arg argv "--clock" "wall")
    Kernels.Parallelism.MaxThreads <- threads

    for cin, cout, hw, k in shapes do
        let x = normal 1L [| batch; cin; hw; hw |]
        let w = normal 2L [| cout; cin; k; k |]
        let b = normal 3L [| cout |]
        let ct = normal 4L [| batch; cout; hw; hw |]

        // With the median, the collections (count and total pause) during the warm-up and timed calls.
        let time name (f: unit -> 'a) =
            let gcs, pause = System.GC.CollectionCount 0, System.GC.GetTotalPauseDuration()
            let median = Timing.medianBy clock 10 reps (f >> ignore)

            printfn
                "conv-profile cin=%d cout=%d hw=%d k=%d %s ms=%.3f gcs=%d gc_pause_ms=%.3f"
                cin
                cout
                hw
                k
                name
                (1000.0 * median)
                (System.GC.CollectionCount 0 - gcs)
                (System.GC.GetTotalPauseDuration() - pause).TotalMilliseconds

        let cg: Kernels.ConvGeometry =
            {
                Window =
                    {
                        Channels = cin
                        Height = hw
                        Width = hw
                        KernelH = k
                        KernelW = k
                        StrideH = 1
                        StrideW = 1
                        PadH = k / 2
                        PadW = k / 2
                        DilationH = 1
                        DilationW = 1
                        OutH = hw
                        OutW = hw
                    }
                Groups = 1
                OutChannels = cout
            }

        let xs, ws, bs, cts = x.ToArray(), w.ToArray(), b.ToArray(), ct.ToArray()
        let y = Array.zeroCreate<float32> cts.Length
        let dx = Array.zeroCreate<float32> xs.Length
        let dw = Array.zeroCreate<float32> ws.Length
        time "kernel_forward" (fun () -> Kernels.ConvKernels.Forward(cg, batch, xs, ws, bs, y))
        time "kernel_input_gradient" (fun () -> Kernels.ConvKernels.BackwardData(cg, batch, ws, cts, dx))
        time "kernel_weight_gradient" (fun () -> Kernels.ConvKernels.BackwardWeight(cg, batch, xs, cts, dw))

        let options =
            { Conv2dOptions.Default with
                Padding = (k / 2, k / 2)
            }

        let conv (x: Tensor, w: Tensor) = Conv.conv2dWith options w (Some b) x
        time "conv2d" (fun () -> conv (x, w))
        time "vjp_forward" (fun () -> Ad.vjp conv (x, w))
        let _, pullback = Ad.vjp conv (x, w)
        time "pullback" (fun () -> pullback ct)

    0

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

let run (argv: string[]) =
    let threads = int (arg argv "--threads" "2")
    let reps = int (arg argv "--reps" "31")
    Kernels.Parallelism.MaxThreads <- threads

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
        let forward = Timing.median 10 reps (fun () -> conv (x, w) |> ignore)

        let forwardBackward =
            Timing.median 10 reps (fun () ->
                let _, pullback = Ad.vjp conv (x, w)
                pullback ct |> ignore)

        let flops, _ = roofline cin cout hw k

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

/// Where the time of one shape goes: the forward's parts (unfold, GEMM, bias, NCHW permute) and
/// the backward's (the two GEMMs and the fold), each timed alone.
let profile (argv: string[]) =
    let threads = int (arg argv "--threads" "2")
    let reps = int (arg argv "--reps" "31")
    Kernels.Parallelism.MaxThreads <- threads

    for cin, cout, hw, k in shapes do
        let x = normal 1L [| batch; cin; hw; hw |]
        let w = normal 2L [| cout; cin; k; k |]
        let b = normal 3L [| cout |]
        let rows, l = cin * k * k, hw * hw

        let uo =
            { UnfoldOptions.Of(k, k) with
                Padding = (k / 2, k / 2)
            }

        let time name (f: unit -> 'a) =
            printfn "conv-profile cin=%d cout=%d hw=%d k=%d %s ms=%.3f" cin cout hw k name (1000.0 * Timing.median 10 reps (f >> ignore))

        // The [N; rows; L] unfold costs the same as the [rows; N; L] one conv uses (same writes).
        let p = Conv.unfoldWith uo x
        let pm = p.Permute(1, 0, 2).Reshape(rows, batch * l)
        let wm = w.Reshape(cout, rows)
        let y = wm.MatMul pm
        let ct = normal 4L [| cout; batch * l |]
        time "unfold" (fun () -> Conv.unfoldWith uo x)
        time "gemm_w_p" (fun () -> wm.MatMul pm)
        time "bias" (fun () -> y + b.Reshape(cout, 1))
        time "permute_nchw" (fun () -> y.Reshape(cout, batch, l).Permute(1, 0, 2))
        time "gemm_dw" (fun () -> ct.MatMul(pm, false, true))
        time "gemm_dp" (fun () -> wm.MatMul(ct, true, false))
        time "fold" (fun () -> Conv.fold (hw, hw) uo p)

        time "conv2d" (fun () ->
            Conv.conv2dWith
                { Conv2dOptions.Default with
                    Padding = (k / 2, k / 2)
                }
                w
                (Some b)
                x)

    0

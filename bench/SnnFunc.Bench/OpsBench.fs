/// Per-operation overhead of the tensor layer and of the transforms on [64; 246] tensors (the W1
/// hidden-layer shape): the same chain of elementwise operations run eagerly, under jvp and under
/// grad, reported as nanoseconds per operation (median of repeated runs).
module OpsBench

open System.Diagnostics
open SnnFunc

/// A chain of `n` blocks of 3 elementwise operations (mul by scalar, add, tanh) on x.
let chain (n: int) (y: Tensor) (x: Tensor) =
    let mutable h = x

    for _ in 1..n do
        h <- (h * 0.5 + y).Tanh()

    h

let private median (reps: int) (f: unit -> unit) = Timing.median 5 reps f

/// Prints one line per mode: `ops mode=<eager|jvp|grad> shape=[64; 246] ns_per_op=<n>`.
let run (argv: string[]) =
    let shape =
        match Array.tryFindIndex ((=) "--shape") argv with
        | Some i -> argv[i + 1].Split('x') |> Array.map int
        | None -> [| 64; 246 |]

    let n = 100
    let ops = float (3 * n)
    let k1, k2 = Random.split (Random.key 1L)
    let x = Random.normal k1 shape
    let y = Random.normal k2 shape
    let v = Tensor.OnesLike x
    let sum (t: Tensor) = t.Sum()

    let eager = median 21 (fun () -> chain n y x |> ignore)
    let jvp = median 21 (fun () -> Ad.jvp (chain n y) x v |> ignore)
    let grad = median 21 (fun () -> Ad.valueAndGrad (chain n y >> sum) x |> ignore)

    for name, t in [ "eager", eager; "jvp", jvp; "grad", grad ] do
        printfn "ops mode=%s shape=%s ns_per_op=%.0f total_ms=%.2f" name (Shape.format shape) (t / ops * 1e9) (t * 1e3)

    0

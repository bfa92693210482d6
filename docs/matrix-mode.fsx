(**
---
title: Matrix (MAC) mode
category: Tutorials
categoryindex: 1
index: 6
---
*)
(*** condition: prepare ***)
#r "../src/SnnFunc/bin/Release/net10.0/SnnFunc.dll"
#r "../src/SnnFunc.Backends/bin/Release/net10.0/SnnFunc.Backends.dll"
(*** condition: fsx ***)
#if FSX
#r "nuget: SnnFunc.Backends"
#endif
(**
# Matrix (MAC) mode

In its matrix mode BrainScaleS-2 computes vector-matrix products in analog: 5-bit inputs (0..31) as pulse
trains, 6-bit signed weights (±63), and an 8-bit result per column, with a gain, analog noise and saturation.
`Bss2.Mac.matmul` is that arithmetic, bit for bit as hxtorch's mock mode computes it; its derivative is the
straight-through one, gain · num_sends · x @ w, so networks of these layers train in software with the chip in
the loop.
*)
open SnnFunc
open SnnFunc.Backends.Bss2

let mac =
    { Mac.defaults with
        Key = Random.key 7L
    } // gain 0.002, one send, noise 2 LSB

let x = (Random.uniform (Random.key 1L) [| 4; 200 |] * 31.0).Round() // 4 inputs of 200 values in 0..31
let w = (Random.normal (Random.key 2L) [| 200; 16 |] * 20.0).Round() // weights within ±63

let y = Mac.linear mac w None x // int8 values as a float tensor [4; 16]
let ideal = { mac with Mode = Ideal } // the unquantised product with the same parameters
let yIdeal = Mac.linear ideal w None x

printfn "chip: %A" (y.ToDoubleArray().[0..5])

printfn
    "ideal: %A"
    (yIdeal.ToDoubleArray().[0..5]
     |> Array.map (fun v -> System.Math.Round(v, 2)))
(*** include-output ***)

(**
A converting ReLU maps the int8 result back to 5-bit inputs for the next product; the gradient flows straight
through:
*)
let hidden (w1: Tensor) (x: Tensor) =
    Mac.linear mac w1 None x |> Mac.convertingRelu mac 1

let g = Ad.grad (fun w1 -> (hidden w1 x).Sum()) w

printfn
    "gradient %A, %d of %d entries non-zero"
    g.Shape
    (g.ToDoubleArray() |> Array.filter ((<>) 0.0) |> Array.length)
    g.Count

printfn
    "per input row: %.1f µs and %.2f µJ of emulated hardware time and energy"
    ((Mac.passSeconds mac x 16)[0] * 1e6)
    ((Mac.passJoules mac x 16)[0] * 1e6)
(*** include-output ***)

(**
`samples/MnistMac` trains a convolutional network this way: 98.1 % on MNIST with the emulated chip.
*)

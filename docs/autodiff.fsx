(**
---
title: Automatic differentiation
category: Tutorials
categoryindex: 1
index: 2
---
*)
(*** condition: prepare ***)
#r "../src/SnnFunc/bin/Release/net10.0/SnnFunc.dll"
(*** condition: fsx ***)
#if FSX
#r "nuget: SnnFunc"
#endif
(**
# Automatic differentiation

SnnFunc's transforms are JAX's: functions in, functions out, nested in any order. Here each result is
checked against its closed form. For f(x) = Σ sin(xᵢ) · xᵢ the gradient is sin(x) + x · cos(x):
*)
open SnnFunc

let f (x: Tensor) = (x.Sin() * x).Sum()
let x = Tensor.ofArray64 [| 0.3; -1.2; 2.0; 0.7 |] [| 4 |]
let closedForm = x.Sin() + x * x.Cos()
let gradient = Ad.grad f x

printfn "grad f x    = %A" (gradient.ToDoubleArray())
printfn "closed form = %A" (closedForm.ToDoubleArray())
(*** include-output ***)

(**
Forward mode (`Ad.jvp`) pushes a tangent through the function; reverse mode (`Ad.vjp`) pulls a cotangent back.
For a scalar function the directional derivative along v equals the gradient's dot product with v:
*)
let v = Tensor.ofArray64 [| 1.0; 0.0; -1.0; 2.0 |] [| 4 |]
let value, tangent = Ad.jvp f x v
let _, pullback = Ad.vjp f x
let cotangent = pullback (Tensor.Scalar(1.0, DType.Float64))

printfn
    "f x = %.6f, jvp along v = %.12f, <grad, v> = %.12f"
    (value.ToScalar())
    (tangent.ToScalar())
    ((cotangent * v).Sum().ToScalar())
(*** include-output ***)

(**
`Ad.vmap` maps a function over a leading axis; a vmap of a gradient gives per-example gradients. The Hessian of
f is diagonal with entries 2 cos(x) − x sin(x):
*)
let rows =
    Tensor.ofArray64 [| 1.0; 2.0; 3.0; 4.0; 5.0; 6.0 |] [| 2; 3 |]

let perRow =
    Ad.vmap (Ad.grad (fun (r: Tensor) -> r.Square().Sum())) rows // 2 · r per row

let hessian = Ad.hessian f x

printfn "per-row gradients = %A" (perRow.ToDoubleArray())

printfn
    "Hessian diagonal  = %A"
    (Array.init 4 (fun i -> hessian.ToDoubleArray().[i * 4 + i]))

printfn
    "closed form       = %A"
    ((2.0 * x.Cos() - x * x.Sin()).ToDoubleArray())
(*** include-output ***)

(**
Parameters are pytrees: records, maps, lists and tuples of tensors. The gradient has the structure of the
argument:
*)
let parameters =
    Map
        [
            ("w", Tensor.ofArray64 [| 1.0; 2.0 |] [| 2 |])
            ("b", Tensor.Scalar(0.5, DType.Float64))
        ]

let loss (q: Map<string, Tensor>) =
    (q["w"] * 3.0 + q["b"]).Square().Sum()

let grads = Ad.grad loss parameters

printfn
    "d/dw = %A, d/db = %.1f"
    (grads["w"].ToDoubleArray())
    (grads["b"].ToScalar())
(*** include-output ***)

(**
Every custom kernel of the library (the fused LIF and LI layers, the event solver, the chip emulator's passes)
is closed under all of these transforms, which a test matrix checks against each kernel's plain tensor twin.
*)

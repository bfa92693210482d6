// An F# script on the packed SnnFunc package (`#r "nuget: ..."`): the gradient of
// f(x) = Σ sin(x) · x against its closed form sin(x) + x · cos(x). Exit code 1 if they differ.
#r "nuget: SnnFunc, __VERSION__"

open SnnFunc

let xs = [| 0.3; -1.2; 2.0; 0.7 |]
let gradient = (Ad.grad (fun (t: Tensor) -> (t.Sin() * t).Sum()) (Tensor.ofArray64 xs [| 4 |])).ToDoubleArray()

let error =
    Array.map2 (fun g x -> abs (g - (sin x + x * cos x))) gradient xs |> Array.max

printfn "fsx gradient=%A max_error=%.1e" gradient error
exit (if error < 1e-12 then 0 else 1)

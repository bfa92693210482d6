/// A small demo of the tensor layer; replaced as the main job by the Yin-Yang sample.
module Program

open SnnFunc

[<EntryPoint>]
let main _ =
    let x = Tensor.ofArray [| 1.0f; 2.0f; 3.0f |] [| 3 |]
    let y = Tensor.sum (Tensor.sin x * x)
    printfn "x = %O" x
    printfn "sum(sin x * x) = %O" y
    let m = Tensor.ofArray (Array.init 12 float32) [| 4; 3 |]
    printfn "softmax rows = %O" (Tensor.softmax -1 m)
    printfn "result=%g" (Tensor.item y)
    0

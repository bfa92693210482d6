/// Invalid input raises ArgumentException naming the operation and the shapes or values involved;
/// ToString is readable.
module SnnFunc.Tests.TensorErrorTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.TestUtil

let private m23 () =
    Tensor.arange 6 |> Tensor.reshape [| 2; 3 |]

// ---------------------------------------------------------------------------------------------
// Shapes and dimensions

[<Fact>]
let ``negative dimensions are rejected by every creator, naming it`` () =
    assertThrowsArg [ "Tensor.zeros"; "[2; -1]"; "negative" ] (fun () -> Tensor.zeros [| 2; -1 |])
    assertThrowsArg [ "Tensor.ones"; "[-3]"; "negative" ] (fun () -> Tensor.ones [| -3 |])
    assertThrowsArg [ "Tensor.full"; "[-3]"; "negative" ] (fun () -> Tensor.full [| -3 |] 1.0)
    assertThrowsArg [ "Tensor.FromArray"; "[-1; -2]" ] (fun () -> Tensor.FromArray([| 1.0f; 2.0f |], -1, -2))
    assertThrowsArg [ "Tensor.reshape"; "[2; -3]"; "negative" ] (fun () -> (m23 ()).Reshape(2, -3))
    assertThrowsArg [ "Tensor.broadcastTo"; "[-2; 3]" ] (fun () -> (m23 ()).BroadcastTo(-2, 3))
    assertThrowsArg [ "Tensor.eye"; "-2" ] (fun () -> Tensor.eye -2)
    assertThrowsArg [ "Tensor.linspace"; "-1" ] (fun () -> Tensor.linspace 0.0 1.0 -1)
    assertThrowsArg [ "Tensor.pad"; "non-negative"; "[0; -1]" ] (fun () -> (m23 ()).Pad([| 0; -1 |], [| 0; 0 |]))
    assertThrowsArg [ "Tensor.scatterAdd"; "-1" ] (fun () -> (Tensor.ones [| 2 |]).ScatterAdd(0, [| 0; 0 |], -1))

[<Fact>]
let ``FromArray data length must match the shape`` () =
    assertThrowsArg [ "Tensor.FromArray"; "5 elements"; "[2; 3]"; "6" ] (fun () -> Tensor.FromArray(Array.zeroCreate<float32> 5, 2, 3))
    assertThrowsArg [ "Tensor.FromArray"; "2 elements"; "[]" ] (fun () -> Tensor.FromArray([| 1.0; 2.0 |], [||]))
    assertThrowsArg [ "Tensor.FromArray"; "[0]" ] (fun () -> Tensor.ofArray [| 1.0f |] [| 0 |])
    assertThrowsArg [ "Tensor.FromArray"; "null" ] (fun () -> Tensor.FromArray((null: float32[]), 2))
    assertThrowsArg [ "Tensor.FromArray"; "null" ] (fun () -> Tensor.FromArray([| 1.0 |], (null: int[])))

[<Fact>]
let ``FromArray without a shape is the vector of the data; an explicit empty shape is a scalar`` () =
    let v32 = Tensor.FromArray [| 1.0f; 2.0f; 3.0f |]
    Assert.Equal<int[]>([| 3 |], v32.Shape)
    Assert.Equal(Float32, v32.DType)
    Assert.Equal<float32[]>([| 1.0f; 2.0f; 3.0f |], v32.ToArray())
    let v64 = Tensor.FromArray [| 4.0 |]
    Assert.Equal<int[]>([| 1 |], v64.Shape)
    Assert.Equal(Float64, v64.DType)
    Assert.Equal<int[]>([| 0 |], (Tensor.FromArray(Array.empty<float>)).Shape)
    Assert.Equal<int[]>([||], (Tensor.FromArray([| 4.0 |], [||])).Shape)
    assertThrowsArg [ "Tensor.FromArray"; "3 elements"; "[]" ] (fun () -> Tensor.FromArray([| 1.0f; 2.0f; 3.0f |], [||]))
    assertThrowsArg [ "Tensor.FromArray"; "null" ] (fun () -> Tensor.FromArray(null: float[]))

[<Fact>]
let ``rank mismatches: permutation, slice, pad`` () =
    let t = m23 ()
    assertThrowsArg [ "Tensor.permute"; "[0]"; "rank 2"; "[2; 3]" ] (fun () -> t.Permute 0)
    assertThrowsArg [ "Tensor.permute"; "[0; 0]"; "[2; 3]" ] (fun () -> t.Permute(0, 0))
    assertThrowsArg [ "Tensor.permute"; "axis 2" ] (fun () -> t.Permute(0, 2))
    assertThrowsArg [ "Tensor.slice"; "starts"; "[0]"; "rank 2" ] (fun () -> t.Slice([| 0 |], [| 1; 1 |]))
    assertThrowsArg [ "Tensor.slice"; "sizes"; "[1; 1; 1]"; "rank 2" ] (fun () -> t.Slice([| 0; 0 |], [| 1; 1; 1 |]))
    assertThrowsArg [ "Tensor.slice"; "[1; 2]"; "[1; 2]"; "[2; 3]"; "axis 1" ] (fun () -> t.Slice([| 1; 2 |], [| 1; 2 |]))
    assertThrowsArg [ "Tensor.slice"; "[-1; 0]" ] (fun () -> t.Slice([| -1; 0 |], [| 1; 1 |]))
    assertThrowsArg [ "Tensor.slice"; "[2; 3]" ] (fun () -> t.Narrow(0, 1, 2))
    assertThrowsArg [ "Tensor.pad"; "low padding"; "rank 2" ] (fun () -> t.Pad([| 1 |], [| 1; 1 |]))
    assertThrowsArg [ "Tensor.slice"; "null" ] (fun () -> t.Slice(null, [| 1; 1 |]))

[<Fact>]
let ``axis out of range, positive and negative`` () =
    let t = m23 ()
    assertThrowsArg [ "Tensor.sum"; "axis 2"; "rank 2" ] (fun () -> t.Sum 2)
    assertThrowsArg [ "Tensor.sum"; "axis -3"; "rank 2" ] (fun () -> t.Sum -3)
    assertThrowsArg [ "Tensor.max"; "axis 5" ] (fun () -> t.MaxAxes [| 0; 5 |])
    assertThrowsArg [ "Tensor.min"; "repeated" ] (fun () -> t.MinAxes [| 1; -1 |])
    assertThrowsArg [ "Tensor.mean"; "axis -3" ] (fun () -> t.Mean -3)
    assertThrowsArg [ "Tensor.argmax"; "axis 2" ] (fun () -> t.ArgMax 2)
    assertThrowsArg [ "Tensor.argmin"; "axis -3" ] (fun () -> t.ArgMin -3)
    assertThrowsArg [ "Tensor.argmax"; "rank 0" ] (fun () -> (Tensor.scalar 1.0).ArgMax 0)
    assertThrowsArg [ "Tensor.logSumExp"; "axis 2" ] (fun () -> t.LogSumExp 2)
    assertThrowsArg [ "Tensor.concat"; "axis 2" ] (fun () -> Tensor.Concat([| t; t |], 2))
    assertThrowsArg [ "Tensor.concat"; "axis -3" ] (fun () -> Tensor.Concat([| t; t |], -3))
    assertThrowsArg [ "Tensor.stack"; "axis 3" ] (fun () -> Tensor.Stack([| t; t |], 3))
    assertThrowsArg [ "Tensor.gather"; "axis 2" ] (fun () -> t.Gather(2, [| 0 |]))
    assertThrowsArg [ "Tensor.narrow"; "axis -3" ] (fun () -> t.Narrow(-3, 0, 1))
    assertThrowsArg [ "Tensor.squeeze"; "axis 2" ] (fun () -> t.Squeeze 2)
    assertThrowsArg [ "Tensor.unsqueeze"; "axis 3" ] (fun () -> t.Unsqueeze 3)
    assertThrowsArg [ "Tensor.scatterAdd"; "axis 2"; "[2; 3]" ] (fun () -> t.ScatterAdd(2, [| 0 |], 4))
    assertThrowsArg [ "Tensor.transpose"; "[3]" ] (fun () -> (Tensor.arange 3).Transpose())

[<Fact>]
let ``incompatible broadcasts name the op and both shapes`` () =
    let a, b = Tensor.zeros [| 2; 3 |], Tensor.zeros [| 4 |]
    assertThrowsArg [ "Tensor.add"; "[2; 3]"; "[4]"; "broadcast" ] (fun () -> a + b)
    assertThrowsArg [ "Tensor.sub"; "[4]"; "[2; 3]" ] (fun () -> b - a)
    assertThrowsArg [ "Tensor.mul"; "[2; 3]"; "[4]" ] (fun () -> a * b)
    assertThrowsArg [ "Tensor.div"; "[2; 3]"; "[4]" ] (fun () -> a / b)
    assertThrowsArg [ "Tensor.maximum"; "[2; 3]"; "[4]" ] (fun () -> Tensor.maximum a b)
    assertThrowsArg [ "Tensor.lt"; "[2; 3]"; "[4]" ] (fun () -> Tensor.lt a b)
    assertThrowsArg [ "Tensor.where"; "[2; 3]"; "[4]" ] (fun () -> Tensor.where a a b)
    assertThrowsArg [ "Tensor.add"; "[0]"; "[2]" ] (fun () -> Tensor.zeros [| 0 |] + Tensor.zeros [| 2 |])
    assertThrowsArg [ "Tensor.broadcastTo"; "[2; 3]"; "[3; 3]" ] (fun () -> a.BroadcastTo(3, 3))
    assertThrowsArg [ "Tensor.broadcastTo"; "[2; 3]"; "[3]" ] (fun () -> a.BroadcastTo 3)

[<Fact>]
let ``matmul inner-dimension and rank errors`` () =
    assertThrowsArg [ "Tensor.matmul"; "[2; 3]"; "[4; 5]"; "k = 3"; "k = 4" ] (fun () ->
        Tensor.matmul (Tensor.zeros [| 2; 3 |]) (Tensor.zeros [| 4; 5 |]))

    assertThrowsArg [ "Tensor.matmul"; "[3]"; "[4]" ] (fun () -> Tensor.matmul (Tensor.zeros [| 3 |]) (Tensor.zeros [| 4 |]))
    assertThrowsArg [ "Tensor.matmul"; "[2; 3]"; "[2]" ] (fun () -> Tensor.matmul (Tensor.zeros [| 2; 3 |]) (Tensor.zeros [| 2 |]))
    assertThrowsArg [ "Tensor.matmul"; "[]" ] (fun () -> Tensor.matmul (Tensor.scalar 1.0) (Tensor.zeros [| 2 |]))

    assertThrowsArg [ "Tensor.matmul"; "[2; 2; 3]"; "[3; 3; 4]" ] (fun () ->
        Tensor.matmul (Tensor.zeros [| 2; 2; 3 |]) (Tensor.zeros [| 3; 3; 4 |]))

    assertThrowsArg [ "Tensor.matmul"; "transposed" ] (fun () -> Tensor.matmulNT (Tensor.zeros [| 2; 3 |]) (Tensor.zeros [| 3; 4 |]))
    assertThrowsArg [ "Tensor.matmul"; "rank >= 2" ] (fun () -> (Tensor.zeros [| 3 |]).MatMul(Tensor.zeros [| 3; 4 |], false, false))

[<Fact>]
let ``outputs with more elements than an int are rejected for every primitive, not only reshape`` () =
    // Small arguments, huge results: the count must be checked before anything is allocated.
    let col, row = Tensor.zeros [| 50000; 1 |], Tensor.zeros [| 1; 50000 |]
    assertThrowsArg [ "Tensor.add"; "[50000; 50000]"; "2147483647" ] (fun () -> col + row)
    assertThrowsArg [ "Tensor.lt"; "[50000; 50000]" ] (fun () -> Tensor.lt col row)
    assertThrowsArg [ "Tensor.where"; "[50000; 50000]" ] (fun () -> Tensor.where col col row)
    assertThrowsArg [ "Tensor.matmul"; "[50000; 50000]" ] (fun () -> Tensor.matmul col row)
    assertThrowsArg [ "Tensor.gather"; "[50000; 50000]" ] (fun () -> row.Gather(0, Array.zeroCreate 50000))
    assertThrowsArg [ "Tensor.broadcastTo"; "[50000; 50000]" ] (fun () -> col.BroadcastTo(50000, 50000))
    assertThrowsArg [ "Tensor.pad"; "[3; 2147483647]" ] (fun () -> (Tensor.zeros [| 1; 1 |]).Pad([| 1; 0 |], [| 1; Int32.MaxValue - 1 |]))

[<Fact>]
let ``reshape count mismatch and two -1s`` () =
    let t = m23 ()
    assertThrowsArg [ "Tensor.reshape"; "[2; 3]"; "6 elements"; "[4]"; "4 elements" ] (fun () -> t.Reshape 4)
    assertThrowsArg [ "Tensor.reshape"; "-1"; "[-1; -1]" ] (fun () -> t.Reshape(-1, -1))
    assertThrowsArg [ "Tensor.reshape"; "[-1; 4]"; "6" ] (fun () -> t.Reshape(-1, 4))
    assertThrowsArg [ "Tensor.reshape"; "[0; -1]" ] (fun () -> (Tensor.zeros [| 0; 3 |]).Reshape(0, -1))
    assertThrowsArg [ "Tensor.reshape"; "null" ] (fun () -> t.Reshape(null: int[]))

[<Fact>]
let ``dtype mismatch between Float32 and Float64 operands`` () =
    let a = Tensor.zeros [| 2 |]
    let b = Tensor.Full([| 2 |], 0.0, Float64)
    assertThrowsArg [ "Tensor.add"; "float32"; "float64"; "convert" ] (fun () -> a + b)
    assertThrowsArg [ "Tensor.eq"; "float64"; "float32" ] (fun () -> b.Eq a)
    assertThrowsArg [ "Tensor.where"; "float32"; "float64" ] (fun () -> Tensor.where a a b)
    // The condition may have another dtype than the branches (non-zero is true).
    Assert.Equal(Float32, (Tensor.where b a a).DType)

    assertThrowsArg [ "Tensor.matmul"; "float32"; "float64" ] (fun () ->
        Tensor.matmul (Tensor.zeros [| 2; 2 |]) (Tensor.Full([| 2; 2 |], 0.0, Float64)))

    assertThrowsArg [ "Tensor.concat"; "float32"; "float64" ] (fun () -> Tensor.concat 0 [ a; b ])

[<Fact>]
let ``gather and scatterAdd index errors`` () =
    let t = Tensor.zeros [| 3; 2 |]
    assertThrowsArg [ "Tensor.gather"; "index 3"; "[0, 3)"; "axis 0"; "[3; 2]" ] (fun () -> t.Gather(0, [| 0; 3 |]))
    assertThrowsArg [ "Tensor.gather"; "index -1" ] (fun () -> t.Gather(1, [| -1 |]))
    assertThrowsArg [ "Tensor.gather"; "3 indices"; "[2; 2]" ] (fun () -> t.Gather(0, [| 0; 1; 2 |], [| 2; 2 |]))
    assertThrowsArg [ "Tensor.gather"; "null" ] (fun () -> t.Gather(0, (null: int[])))
    assertThrowsArg [ "Tensor.scatterAdd"; "index 4"; "[0, 4)" ] (fun () -> t.ScatterAdd(0, [| 1; 4; 0 |], 4))
    assertThrowsArg [ "Tensor.scatterAdd"; "[3; 2]"; "[2]" ] (fun () -> t.ScatterAdd(0, [| 0; 1 |], 4))
    assertThrowsArg [ "Tensor.scatterAdd"; "null" ] (fun () -> t.ScatterAdd(0, (null: int[]), 4))

[<Fact>]
let ``oneHot label and class errors`` () =
    assertThrowsArg [ "Tensor.oneHot"; "label 5"; "position 1"; "[0, 3)" ] (fun () -> Tensor.oneHot 3 [| 0; 5 |])
    assertThrowsArg [ "Tensor.oneHot"; "label -1" ] (fun () -> Tensor.oneHot 3 [| -1 |])
    assertThrowsArg [ "Tensor.oneHot"; "classes"; "0" ] (fun () -> Tensor.oneHot 0 [| 0 |])
    assertThrowsArg [ "Tensor.oneHot"; "null" ] (fun () -> Tensor.oneHot 2 null)

[<Fact>]
let ``max, min and argmax over an empty axis`` () =
    let e = Tensor.zeros [| 0; 3 |]
    assertThrowsArg [ "Tensor.max"; "empty axis 0"; "[0; 3]" ] (fun () -> e.Max 0)
    assertThrowsArg [ "Tensor.min"; "empty axis 0"; "[0; 3]" ] (fun () -> e.Min())
    assertThrowsArg [ "Tensor.max"; "[0]" ] (fun () -> (Tensor.zeros [| 0 |]).Max())
    assertThrowsArg [ "Tensor.argmax"; "empty axis 0"; "[0; 3]" ] (fun () -> e.ArgMax 0)
    assertThrowsArg [ "Tensor.argmin"; "empty axis 1"; "[3; 0]" ] (fun () -> (Tensor.zeros [| 3; 0 |]).ArgMin -1)
    // Non-empty axes of an empty tensor are fine: the result is empty.
    Assert.Equal<int[]>([| 0 |], (e.Max 1).Shape)

[<Fact>]
let ``item needs exactly one element`` () =
    assertThrowsArg [ "Tensor.item"; "[2]" ] (fun () -> Tensor.item (Tensor.zeros [| 2 |]))
    assertThrowsArg [ "Tensor.item"; "[0]" ] (fun () -> Tensor.item (Tensor.zeros [| 0 |]))
    assertThrowsArg [ "Tensor.item"; "[2; 3]" ] (fun () -> (m23 ()).ToScalar())
    Assert.Equal(5.0, Tensor.item (Tensor.full [| 1; 1; 1 |] 5.0))

[<Fact>]
let ``arange and linspace reject bad ranges`` () =
    assertThrowsArg [ "Tensor.arange"; "step 0" ] (fun () -> Tensor.Arange(0.0, 1.0, 0.0))
    assertThrowsArg [ "Tensor.arange"; "NaN" ] (fun () -> Tensor.Arange(nan, 1.0, 1.0))
    assertThrowsArg [ "Tensor.arange"; "finite" ] (fun () -> Tensor.Arange(0.0, infinity, 1.0))
    assertThrowsArg [ "Tensor.arange"; "finite" ] (fun () -> Tensor.Arange(0.0, -1.0, -infinity))
    // More elements than a tensor can hold.
    assertThrowsArg [ "Tensor.arange"; "elements" ] (fun () -> Tensor.Arange(0.0, 1e12, 1.0))

[<Fact>]
let ``null arguments raise ArgumentException naming the op`` () =
    let t = Tensor.zeros [| 2 |]
    let n: Tensor = null
    assertThrowsArg [ "Tensor.add"; "null" ] (fun () -> t + n)
    assertThrowsArg [ "Tensor.add"; "null" ] (fun () -> n + t)
    assertThrowsArg [ "Tensor.add"; "null" ] (fun () -> n + 1.0)
    assertThrowsArg [ "Tensor.sub"; "null" ] (fun () -> 1.0 - n)
    assertThrowsArg [ "Tensor.mul"; "null" ] (fun () -> n * 2.0)
    assertThrowsArg [ "Tensor.div"; "null" ] (fun () -> 2.0 / n)
    assertThrowsArg [ "Tensor.pow"; "null" ] (fun () -> n ** 2.0)
    assertThrowsArg [ "Tensor.pow"; "null" ] (fun () -> t ** n)
    assertThrowsArg [ "Tensor.neg"; "null" ] (fun () -> -n)
    assertThrowsArg [ "Tensor.mul"; "null" ] (fun () -> t * n)
    assertThrowsArg [ "Tensor.where"; "null" ] (fun () -> Tensor.where n t t)
    assertThrowsArg [ "Tensor.matmul"; "null" ] (fun () -> t.MatMul n)
    assertThrowsArg [ "Tensor.concat"; "null" ] (fun () -> Tensor.Concat(null))
    assertThrowsArg [ "Tensor.concat"; "null" ] (fun () -> Tensor.Concat([| n; t |]))
    assertThrowsArg [ "Tensor.concat"; "null" ] (fun () -> Tensor.Concat([| t; n |]))
    assertThrowsArg [ "Tensor.stack"; "null" ] (fun () -> Tensor.Stack([| n; t |]))
    assertThrowsArg [ "Tensor.stack"; "null" ] (fun () -> Tensor.Stack([| t; n |]))
    assertThrowsArg [ "Tensor.permute"; "null" ] (fun () -> t.Permute(null: int[]))
    assertThrowsArg [ "Tensor.sum"; "null" ] (fun () -> t.SumAxes null)
    assertThrowsArg [ "Tensor.broadcastTo"; "null" ] (fun () -> t.BroadcastTo(null: int[]))
    assertThrowsArg [ "Tensor.zeros"; "null" ] (fun () -> Tensor.zeros null)
    assertThrowsArg [ "Tensor.FromStorage"; "null" ] (fun () -> Tensor.FromStorage([| 1 |], Unchecked.defaultof<Storage>))
    assertThrowsArg [ "Tensor.concat"; "at least one" ] (fun () -> Tensor.concat 0 [])

[<Fact>]
let ``concat and stack shape mismatches`` () =
    let a, b = Tensor.zeros [| 2; 3 |], Tensor.zeros [| 2; 4 |]
    assertThrowsArg [ "Tensor.concat"; "[2; 3]"; "[2; 4]"; "axis 0" ] (fun () -> Tensor.concat 0 [ a; b ])
    assertThrowsArg [ "Tensor.concat"; "[2; 3]"; "[3]" ] (fun () -> Tensor.concat 0 [ a; Tensor.zeros [| 3 |] ])
    assertThrowsArg [ "Tensor.concat"; "axis 0"; "rank 0" ] (fun () -> Tensor.concat 0 [ Tensor.scalar 1.0; Tensor.scalar 2.0 ])
    assertThrowsArg [ "Tensor.stack"; "[2; 3]"; "[2; 4]" ] (fun () -> Tensor.stack 0 [ a; b ])
    Assert.Equal<int[]>([| 2; 7 |], (Tensor.concat 1 [ a; b ]).Shape)

// ---------------------------------------------------------------------------------------------
// ToString

[<Fact>]
let ``ToString of a small tensor shows every value, the shape and the dtype`` () =
    let s = (m23 ()).ToString()
    Assert.Equal("tensor([[0, 1, 2],\n        [3, 4, 5]], shape=[2; 3], dtype=float32)", s)
    let d = (Tensor.FromArray([| 0.1; -2.5; nan; infinity |], 4)).ToString()
    Assert.Equal("tensor([0.1, -2.5, NaN, Infinity], shape=[4], dtype=float64)", d)
    // float32 values print as float32 (0.1f, not 0.100000001490116).
    Assert.Equal("tensor([0.1], shape=[1], dtype=float32)", (Tensor.ofArray [| 0.1f |] [| 1 |]).ToString())

[<Fact>]
let ``ToString of a rank-0 tensor`` () =
    Assert.Equal("tensor(3.5, shape=[], dtype=float32)", (Tensor.scalar 3.5).ToString())
    Assert.Equal("tensor(-1, shape=[], dtype=float64)", (Tensor.Scalar(-1.0, Float64)).ToString())

[<Fact>]
let ``ToString of empty tensors`` () =
    Assert.Equal("tensor([], shape=[0], dtype=float32)", (Tensor.zeros [| 0 |]).ToString())
    Assert.Contains("shape=[2; 0]", (Tensor.zeros [| 2; 0 |]).ToString())

[<Fact>]
let ``ToString of a large tensor elides the middle and stays short`` () =
    let t = Tensor.arange 1000000 |> Tensor.reshape [| 1000; 1000 |]
    let s = t.ToString()
    Assert.True(s.Length < 400, $"ToString of [1000; 1000] is %d{s.Length} characters long")
    Assert.Contains("shape=[1000; 1000]", s)
    Assert.Contains("dtype=float32", s)
    Assert.Contains("...", s)
    Assert.StartsWith("tensor([[0, 1, 2, ..., 997, 998, 999],", s)
    Assert.Contains("[999000, 999001, 999002, ..., 999997, 999998, 999999]]", s)
    let v = (Tensor.arange 7).ToString()
    Assert.Equal("tensor([0, 1, 2, ..., 4, 5, 6], shape=[7], dtype=float32)", v)

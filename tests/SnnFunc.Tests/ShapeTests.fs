/// The Shape module: formatting, counts, strides, axes and NumPy broadcasting.
module SnnFunc.Tests.ShapeTests

open System
open Xunit
open FsCheck.FSharp
open SnnFunc
open SnnFunc.Tests.TestUtil

[<Fact>]
let ``format shows shapes the way messages do`` () =
    Assert.Equal("[64; 246]", Shape.format [| 64; 246 |])
    Assert.Equal("[]", Shape.format [||])
    Assert.Equal("[0]", Shape.format [| 0 |])

[<Fact>]
let ``checkedCount counts elements, including empty shapes and scalars`` () =
    Assert.Equal(1, Shape.checkedCount "t" [||])
    Assert.Equal(0, Shape.checkedCount "t" [| 3; 0; 2 |])
    Assert.Equal(120, Shape.checkedCount "t" [| 2; 3; 4; 5 |])
    Assert.Equal(Int32.MaxValue, Shape.checkedCount "t" [| Int32.MaxValue |])

[<Fact>]
let ``checkedCount rejects a negative dimension naming the op and shape`` () =
    assertThrowsArg [ "Tensor.zeros"; "[2; -1]"; "negative" ] (fun () -> Shape.checkedCount "Tensor.zeros" [| 2; -1 |])

[<Fact>]
let ``checkedCount rejects a count that overflows int`` () =
    assertThrowsArg [ "op"; "[65536; 65536]"; "2147483647" ] (fun () -> Shape.checkedCount "op" [| 65536; 65536 |])
    assertThrowsArg [ "op"; "[2147483647; 2]" ] (fun () -> Shape.checkedCount "op" [| Int32.MaxValue; 2 |])
    // Beyond int64 too: the running product must not wrap around to a small number.
    assertThrowsArg [ "op" ] (fun () -> Shape.checkedCount "op" [| 1 <<< 30; 1 <<< 30; 1 <<< 30; 8 |])

[<Fact>]
let ``checkedCount with a zero dimension: count 0, but the other dimensions must still fit, in any order`` () =
    Assert.Equal(0, Shape.checkedCount "op" [| 46340; 0; 46340 |])
    Assert.Equal(0, Shape.checkedCount "op" [| 0; Int32.MaxValue |])
    // Strides and sub-shape counts are ints: the non-zero dimensions may not overflow, wherever the
    // zero is (it used to depend on the order).
    assertThrowsArg [ "op"; "[100000; 100000; 0]"; "non-zero" ] (fun () -> Shape.checkedCount "op" [| 100000; 100000; 0 |])
    assertThrowsArg [ "op"; "[0; 100000; 100000]"; "non-zero" ] (fun () -> Shape.checkedCount "op" [| 0; 100000; 100000 |])
    // A negative dimension is still an error after a zero.
    assertThrowsArg [ "op"; "negative" ] (fun () -> Shape.checkedCount "op" [| 0; -1 |])

[<Fact>]
let ``checkedCount rejects null`` () =
    assertThrowsArg [ "op"; "null" ] (fun () -> Shape.checkedCount "op" null)

[<Fact>]
let ``strides are row-major`` () =
    Assert.Equal<int[]>([| 12; 4; 1 |], Shape.strides [| 2; 3; 4 |])
    Assert.Equal<int[]>([||], Shape.strides [||])
    Assert.Equal<int[]>([| 1 |], Shape.strides [| 7 |])
    Assert.Equal<int[]>([| 0; 2; 1 |], Shape.strides [| 3; 0; 2 |])

[<Fact>]
let ``strides agree with the reference ravel for random shapes`` () =
    check 100 genShape (fun shape ->
        let s = Shape.strides shape

        for i in 0 .. countOf shape - 1 do
            let idx = unravel shape i
            let flat = Array.fold2 (fun acc x st -> acc + x * st) 0 idx s

            if flat <> i then
                failwithf "strides %A of %s map %A to %d, expected %d" s (fmtShape shape) idx flat i)

[<Fact>]
let ``normAxis maps negative axes and rejects out-of-range ones`` () =
    Assert.Equal(2, Shape.normAxis "op" 3 -1)
    Assert.Equal(0, Shape.normAxis "op" 3 -3)
    Assert.Equal(1, Shape.normAxis "op" 3 1)
    assertThrowsArg [ "Tensor.sum"; "axis 3"; "rank 3" ] (fun () -> Shape.normAxis "Tensor.sum" 3 3)
    assertThrowsArg [ "Tensor.sum"; "axis -4"; "rank 3" ] (fun () -> Shape.normAxis "Tensor.sum" 3 -4)
    assertThrowsArg [ "axis 0"; "rank 0" ] (fun () -> Shape.normAxis "op" 0 0)

[<Fact>]
let ``normAxes sorts, normalises and rejects repeats`` () =
    Assert.Equal<int[]>([| 0; 1; 3 |], Shape.normAxes "op" 4 [| 3; -4; 1 |])
    Assert.Equal<int[]>([||], Shape.normAxes "op" 2 [||])
    assertThrowsArg [ "Tensor.max"; "repeated"; "[1; -3]" ] (fun () -> Shape.normAxes "Tensor.max" 4 [| 1; -3 |])
    assertThrowsArg [ "Tensor.max"; "axis 4" ] (fun () -> Shape.normAxes "Tensor.max" 4 [| 0; 4 |])
    assertThrowsArg [ "op"; "null" ] (fun () -> Shape.normAxes "op" 2 null)

[<Fact>]
let ``broadcast follows NumPy on the classic cases`` () =
    let b a c = Shape.broadcast "op" a c
    Assert.Equal<int[]>([| 3 |], b [||] [| 3 |])
    Assert.Equal<int[]>([| 3; 4 |], b [| 3; 1 |] [| 1; 4 |])
    Assert.Equal<int[]>([| 2; 4; 3 |], b [| 2; 1; 3 |] [| 4; 1 |])
    Assert.Equal<int[]>([| 0; 3 |], b [| 0; 3 |] [| 3 |])
    Assert.Equal<int[]>([| 0 |], b [| 0 |] [| 1 |])
    Assert.Equal<int[]>([| 0 |], b [| 1 |] [| 0 |])
    Assert.Equal<int[]>([| 2; 3 |], b [| 2; 3 |] [| 2; 3 |])
    Assert.Equal<int[]>([||], b [||] [||])

[<Fact>]
let ``broadcast rejects incompatible shapes naming both`` () =
    assertThrowsArg [ "Tensor.add"; "[2; 3]"; "[4]" ] (fun () -> Shape.broadcast "Tensor.add" [| 2; 3 |] [| 4 |])
    assertThrowsArg [ "[0]"; "[2]" ] (fun () -> Shape.broadcast "op" [| 0 |] [| 2 |])

[<Fact>]
let ``broadcast agrees with the reference rule and is symmetric`` () =
    check 100 genBroadcastPair (fun (a, b) ->
        let expected = refBroadcastShape a b
        let ab = Shape.broadcast "op" a b
        let ba = Shape.broadcast "op" b a

        if ab <> expected || ba <> expected then
            failwithf "broadcast %s %s gave %s / %s, expected %s" (fmtShape a) (fmtShape b) (fmtShape ab) (fmtShape ba) (fmtShape expected)

        if not (Shape.broadcastsTo a expected && Shape.broadcastsTo b expected) then
            failwithf "broadcastsTo is false for %s or %s to %s" (fmtShape a) (fmtShape b) (fmtShape expected))

[<Fact>]
let ``broadcastsTo and broadcastStrides`` () =
    Assert.True(Shape.broadcastsTo [| 3; 1 |] [| 2; 3; 4 |])
    Assert.False(Shape.broadcastsTo [| 3; 2 |] [| 2; 3; 4 |])
    Assert.False(Shape.broadcastsTo [| 2; 3; 4 |] [| 3; 4 |])
    Assert.True(Shape.broadcastsTo [||] [||])
    Assert.Equal<int[]>([| 0; 1; 0 |], Shape.broadcastStrides [| 3; 1 |] 3)
    Assert.Equal<int[]>([| 0; 4; 1 |], Shape.broadcastStrides [| 1; 3; 4 |] 3)

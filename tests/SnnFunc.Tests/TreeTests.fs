/// Pytrees: flatten/unflatten/map/map2/leaves round trips over every supported container, static
/// fields kept, mismatched structures rejected, and whole parameter trees differentiated at once.
module SnnFunc.Tests.TreeTests

open System
open System.Collections.Generic
open Xunit
open SnnFunc
open SnnFunc.Tests.TestUtil
open SnnFunc.Tests.AdTestUtil

type Dense =
    {
        W: Tensor
        B: Tensor
        Name: string
        Units: int
        Activation: Tensor -> Tensor
    }

type Layer =
    | Linear of w: Tensor * b: Tensor
    | Scale of Tensor
    | Identity
    | Tagged of label: string * inner: Layer

type Net =
    {
        Layers: Layer list
        Extra: Map<string, Tensor>
        Bias: Tensor option
        Gain: Tensor option
    }

/// A class (as a C# user would write) taking part in pytrees through ITree.
type Pair(a: Tensor, b: Tensor, label: string) =
    member _.A = a
    member _.B = b
    member _.Label = label

    interface ITree with
        member _.Children = [| box a; box b; box label |]

        member _.Rebuild children =
            Pair(children[0] :?> Tensor, children[1] :?> Tensor, children[2] :?> string)

/// One function instance (F# makes a new closure each time a module function is used as a value;
/// static data is compared with Equals, so trees to be combined must share the instance).
let private tanhAct = ref (fun (t: Tensor) -> Tensor.tanh t)

let private v (xs: float list) = t64 [| xs.Length |] xs

/// Leaves are numbered 1, 2, 3 ... so that order is visible.
let private numbered (n: int) =
    Array.init n (fun i -> s64 (float (i + 1)))

let private leafValues (tree: 'T) =
    Tree.leaves tree |> Array.map (fun t -> t.ToDoubleArray())

/// flatten, then unflatten the same leaves: same structure and the very same leaf objects.
let private roundTrip (tree: 'T) (expectedLeaves: int) =
    let leaves, def = Tree.flatten tree
    Assert.Equal(expectedLeaves, leaves.Length)
    Assert.Equal(expectedLeaves, def.LeafCount)
    let rebuilt: 'T = Tree.unflatten def leaves
    let leaves2, def2 = Tree.flatten rebuilt
    Assert.Equal(def, def2)
    Array.iter2 (fun (a: Tensor) b -> Assert.Same(a, b)) leaves leaves2
    rebuilt

[<Fact>]
let ``records round-trip and keep static fields (strings, ints, functions)`` () =
    let act = tanhAct.Value

    let d =
        {
            W = v [ 1.0; 2.0 ]
            B = v [ 3.0 ]
            Name = "dense"
            Units = 2
            Activation = act
        }

    let r = roundTrip d 2
    Assert.Equal("dense", r.Name)
    Assert.Equal(2, r.Units)
    Assert.Same(box d.Activation, box r.Activation)
    Assert.Equal<float[][]>([| [| 1.0; 2.0 |]; [| 3.0 |] |], leafValues d) // field order
    let doubled = Tree.map (fun t -> t * 2.0) d
    Assert.Equal<float[][]>([| [| 2.0; 4.0 |]; [| 6.0 |] |], leafValues doubled)
    Assert.Equal("dense", doubled.Name)
    Assert.Same(box d.Activation, box doubled.Activation)

[<Fact>]
let ``tuples, struct tuples, lists and arrays round-trip in element order`` () =
    let tup = (s64 1.0, (s64 2.0, s64 3.0), "static", 42)
    roundTrip tup 3 |> ignore
    Assert.Equal<float[][]>([| [| 1.0 |]; [| 2.0 |]; [| 3.0 |] |], leafValues tup)
    let (_, _, s, n) = Tree.map (fun t -> t + 1.0) tup
    Assert.Equal("static", s)
    Assert.Equal(42, n)
    let st = struct (s64 1.0, s64 2.0)
    let struct (a, b) = Tree.map (fun t -> t * 10.0) st
    Assert.Equal(10.0, a.ToScalar())
    Assert.Equal(20.0, b.ToScalar())
    let lst = [ s64 1.0; s64 2.0; s64 3.0 ]
    Assert.Equal<float list>([ 2.0; 3.0; 4.0 ], Tree.map (fun t -> t + 1.0) lst |> List.map (fun t -> t.ToScalar()))
    roundTrip ([]: Tensor list) 0 |> ignore
    let arr = [| [| s64 1.0 |]; [| s64 2.0; s64 3.0 |] |]
    let mapped = Tree.map (fun t -> -t) arr
    Assert.Equal(2, mapped[1].Length)
    Assert.Equal(-3.0, (mapped[1][1]).ToScalar())
    roundTrip arr 3 |> ignore

[<Fact>]
let ``maps and dictionaries keep their keys and map their values`` () =
    let m = Map.ofList [ "b", s64 2.0; "a", s64 1.0; "c", s64 3.0 ]
    let m2 = roundTrip m 3
    Assert.Equal<string list>([ "a"; "b"; "c" ], m2 |> Map.toList |> List.map fst)
    let scaled = Tree.map (fun t -> t * 10.0) m
    Assert.Equal(20.0, (scaled["b"]).ToScalar())
    Assert.Equal(30.0, (scaled["c"]).ToScalar())
    let d = Dictionary<string, Tensor>()
    d["w"] <- v [ 1.0; 2.0 ]
    d["b"] <- s64 5.0
    let d2 = Tree.map (fun t -> t + 1.0) d
    Assert.IsType<Dictionary<string, Tensor>>(d2) |> ignore
    Assert.Equal(2, d2.Count)
    Assert.Equal<float[]>([| 2.0; 3.0 |], (d2["w"]).ToDoubleArray())
    Assert.Equal(6.0, (d2["b"]).ToScalar())
    Assert.Equal(1.0, (d["w"]).ToDoubleArray()[0]) // the original is untouched
    roundTrip d 2 |> ignore

[<Fact>]
let ``options (Some and None) and discriminated unions round-trip`` () =
    roundTrip (Some(s64 1.0)) 1 |> ignore
    roundTrip (None: Tensor option) 0 |> ignore
    Assert.True((Tree.map (fun t -> t * 2.0) (None: Tensor option)).IsNone)
    Assert.Equal(4.0, (Tree.map (fun t -> t * 2.0) (Some(s64 2.0))).Value.ToScalar())

    let layers =
        [
            Linear(v [ 1.0; 2.0 ], s64 3.0)
            Scale(s64 4.0)
            Identity
            Tagged("out", Scale(s64 5.0))
        ]

    let rebuilt = roundTrip layers 4
    Assert.Equal<float[][]>([| [| 1.0; 2.0 |]; [| 3.0 |]; [| 4.0 |]; [| 5.0 |] |], leafValues rebuilt)
    let mapped = Tree.map (fun t -> t + 1.0) layers

    match mapped with
    | [ Linear(w, b); Scale s; Identity; Tagged("out", Scale s2) ] ->
        Assert.Equal<float[]>([| 2.0; 3.0 |], w.ToDoubleArray())
        Assert.Equal(4.0, b.ToScalar())
        Assert.Equal(5.0, s.ToScalar())
        Assert.Equal(6.0, s2.ToScalar())
    | other -> Assert.Fail $"unexpected shape of the mapped tree: %A{other}"

[<Fact>]
let ``nested combinations round-trip`` () =
    let net =
        {
            Layers = [ Linear(v [ 1.0 ], v [ 2.0 ]); Identity ]
            Extra = Map.ofList [ "gamma", s64 3.0 ]
            Bias = Some(s64 4.0)
            Gain = None
        }

    let tree =
        (net, [| Some(Pair(s64 5.0, s64 6.0, "p")) |], [ Map.ofList [ 1, (s64 7.0, "x") ] ])

    let rebuilt = roundTrip tree 7
    Assert.Equal<float[][]>(Array.init 7 (fun i -> [| float (i + 1) |]), leafValues rebuilt)
    let (net2, pairs, maps) = Tree.map (fun t -> t * 10.0) tree
    Assert.True(net2.Gain.IsNone)
    Assert.Equal(40.0, net2.Bias.Value.ToScalar())
    Assert.Equal("p", (pairs[0]).Value.Label)
    Assert.Equal(60.0, (pairs[0]).Value.B.ToScalar())
    Assert.Equal("x", snd (maps[0][1]))
    Assert.Equal(70.0, (fst (maps[0][1])).ToScalar())

[<Fact>]
let ``a class implementing ITree takes part, with its static children`` () =
    let p = Pair(v [ 1.0; 2.0 ], s64 3.0, "label")
    let leaves, def = Tree.flatten p
    Assert.Equal(2, leaves.Length)
    let p2: Pair = Tree.unflatten def (numbered 2)
    Assert.Equal("label", p2.Label)
    Assert.Equal(1.0, p2.A.ToScalar())
    Assert.Equal(2.0, p2.B.ToScalar())
    let g = Ad.grad (fun (p: Pair) -> (p.A * p.B).Sum()) p
    Assert.Equal<float[]>([| 3.0; 3.0 |], g.A.ToDoubleArray())
    Assert.Equal(3.0, g.B.ToScalar())
    Assert.Equal("label", g.Label)

[<Fact>]
let ``map2 combines matching trees and rejects mismatched structures`` () =
    let a =
        {
            W = v [ 1.0; 2.0 ]
            B = s64 3.0
            Name = "n"
            Units = 1
            Activation = tanhAct.Value
        }

    let b =
        { a with
            W = v [ 10.0; 20.0 ]
            B = s64 30.0
        }

    let sum = Tree.map2 (+) a b
    Assert.Equal<float[]>([| 11.0; 22.0 |], sum.W.ToDoubleArray())
    Assert.Equal(33.0, sum.B.ToScalar())

    let mismatch (f: unit -> obj) =
        let ex = Assert.Throws<ArgumentException>(fun () -> f () |> ignore)
        Assert.Contains("Tree.map2", ex.Message)
        Assert.Contains("different structures", ex.Message)

    mismatch (fun () -> box (Tree.map2 (+) [ s64 1.0 ] [ s64 1.0; s64 2.0 ]))
    mismatch (fun () -> box (Tree.map2 (+) (Some(s64 1.0)) None))
    mismatch (fun () -> box (Tree.map2 (+) (Scale(s64 1.0)) (Linear(s64 1.0, s64 2.0))))
    mismatch (fun () -> box (Tree.map2 (+) (Map.ofList [ "a", s64 1.0 ]) (Map.ofList [ "b", s64 1.0 ])))
    mismatch (fun () -> box (Tree.map2 (+) { a with Units = 1 } { a with Units = 2 })) // static data differs

    let ex =
        Assert.Throws<ArgumentException>(fun () -> Tree.unflatten<Dense> (snd (Tree.flatten a)) (numbered 3) |> ignore)

    Assert.Contains("2 leaves but 3", ex.Message)

[<Fact>]
let ``valueAndGrad of a loss of a tuple of weights returns gradients in the same structure`` () =
    let rng = Random 1
    let x2 = randn rng [| 5; 3 |]
    let w1, w2 = randn rng [| 3; 4 |], randn rng [| 4; 2 |]

    let loss (w1, w2) =
        Tensor.sum (Tensor.tanh (Tensor.matmul (Tensor.tanh (Tensor.matmul x2 w1)) w2))

    let value, (g1, g2) = Ad.valueAndGrad loss (w1, w2)
    assertEqualValues "value" (loss (w1, w2)) value
    Assert.Equal<int[]>([| 3; 4 |], g1.Shape)
    Assert.Equal<int[]>([| 4; 2 |], g2.Shape)
    // Against one-at-a-time gradients.
    assertClose "d/dw1" 1e-14 1e-15 (Ad.grad (fun w1 -> loss (w1, w2)) w1) g1
    assertClose "d/dw2" 1e-14 1e-15 (Ad.grad (fun w2 -> loss (w1, w2)) w2) g2

[<Fact>]
let ``a record of parameters with static fields is differentiated at once`` () =
    let rng = Random 2
    let x = randn rng [| 4; 3 |]

    let p =
        {
            W = randn rng [| 3; 2 |]
            B = randn rng [| 2 |]
            Name = "layer"
            Units = 2
            Activation = tanhAct.Value
        }

    let net =
        {
            Layers = [ Linear(randn rng [| 2; 2 |], randn rng [| 2 |]); Scale(s64 0.5) ]
            Extra = Map.ofList [ "t", s64 2.0 ]
            Bias = Some(randn rng [| 2 |])
            Gain = None
        }

    let loss (p: Dense, net: Net) =
        let mutable h = p.Activation(Tensor.matmul x p.W + p.B)

        for layer in net.Layers do
            h <-
                match layer with
                | Linear(w, b) -> Tensor.matmul h w + b
                | Scale s -> h * s
                | _ -> h

        ((h + net.Bias.Value) * net.Extra["t"] |> Tensor.square).Mean()

    let g, gnet = Ad.grad loss (p, net)
    Assert.Equal("layer", g.Name)
    Assert.Same(box p.Activation, box g.Activation)
    Assert.True(gnet.Gain.IsNone)
    // Each leaf's gradient against a directional finite difference of the loss along that leaf alone.
    let leaves, def = Tree.flatten (p, net)
    let gLeaves = Tree.leaves (g, gnet)
    Assert.Equal(leaves.Length, gLeaves.Length)

    for i in 0 .. leaves.Length - 1 do
        let d = randn rng leaves[i].Shape

        let at (h: float) =
            loss (Tree.unflatten def (leaves |> Array.mapi (fun j l -> if i = j then l + d * h else l)))

        let fd = ((at 1e-5).ToScalar() - (at -1e-5).ToScalar()) / 2e-5
        assertNear $"leaf %d{i}" 1e-7 fd (dot gLeaves[i] d)

/// A class whose tensor property is computed from the constructor's: it has no constructor
/// parameter or setter of its own, so the tree cannot rebuild it.
type Doubled(w: Tensor) =
    member _.W = w
    member _.Twice = w * 2.0

/// A class with a computed property that holds no tensor: it is recomputed by the constructor.
type Sized(w: Tensor) =
    member _.W = w
    member _.Size = w.Count

/// A class with only non-tensor properties and no matching constructor: a static value.
type Settings(name: string) =
    member _.Name = name
    member _.Length = name.Length

[<Fact>]
let ``a type holding a tensor that cannot be rebuilt is an error naming the type and property`` () =
    let d = Doubled(v [ 1.0; 2.0 ])
    // Before, Doubled silently became a static leaf: grad gave no gradient at all.
    assertThrowsArg [ "Doubled"; "Twice" ] (fun () -> Tree.flatten d)
    assertThrowsArg [ "Doubled"; "Twice" ] (fun () -> Ad.grad (fun (d: Doubled) -> d.W.Sum()) d)
    // Nested inside a supported container, the same.
    assertThrowsArg [ "Doubled"; "Twice" ] (fun () -> Tree.leaves [ d ])

[<Fact>]
let ``a computed property without a tensor is rebuilt by the constructor`` () =
    let s = Sized(v [ 1.0; 2.0; 3.0 ])
    Assert.Equal(1, (Tree.leaves s).Length)
    let g = Ad.grad (fun (s: Sized) -> (s.W * s.W).Sum() * float s.Size) s
    Assert.Equal<float[]>([| 6.0; 12.0; 18.0 |], g.W.ToDoubleArray())
    Assert.Equal(3, g.Size)

[<Fact>]
let ``a type without any tensor stays a static value`` () =
    let s = Settings "abc"
    let leaves, def = Tree.flatten (v [ 1.0 ], s)
    Assert.Equal(1, leaves.Length)
    let _, s2: Tensor * Settings = Tree.unflatten def leaves
    Assert.Same(s, s2)

// Key paths ---------------------------------------------------------------------------------------

type Neuron = { TauMem: Tensor; TauSyn: Tensor }

type Model =
    {
        Hidden: Map<string, Neuron>
        Stack: Tensor list
        Pair: Tensor * (Tensor * Tensor)
        Bias: Tensor option
        Gain: Tensor option
        Head: Layer
        Blocks: Layer[]
    }

/// A class that names its children in key paths.
type Named(left: Tensor, right: Tensor, tag: string) =
    member _.Left = left
    member _.Right = right

    interface IKeyedTree with
        member _.Children = [| box left; box tag; box right |]

        member _.Rebuild children =
            Named(children[0] :?> Tensor, children[2] :?> Tensor, children[1] :?> string)

        member _.ChildKeys =
            [|
                KeyPath.ofKeys [ PathKey.Field "left" ]
                KeyPath.ofKeys [ PathKey.Field "tag" ]
                KeyPath.ofKeys [ PathKey.Field "right"; PathKey.Index 0 ]
            |]

/// An IKeyedTree giving the wrong number of keys.
type BadKeys(x: Tensor) =
    interface IKeyedTree with
        member _.Children = [| box x |]
        member _.Rebuild children = BadKeys(children[0] :?> Tensor)
        member _.ChildKeys = [||]

/// A map key type whose string form is the same for every value.
type Opaque =
    | Opaque of int

    override _.ToString() = "opaque"

let private names (tree: 'T) =
    Tree.leavesWithPath tree |> Array.map (fst >> KeyPath.toName)

let private displays (tree: 'T) =
    Tree.leavesWithPath tree |> Array.map (fst >> KeyPath.toString)

let private model () =
    {
        Hidden =
            Map
                [
                    "out", { TauMem = s64 1.0; TauSyn = s64 2.0 }
                    "in", { TauMem = s64 3.0; TauSyn = s64 4.0 }
                ]
        Stack = [ s64 5.0; s64 6.0 ]
        Pair = s64 7.0, (s64 8.0, s64 9.0)
        Bias = Some(s64 10.0)
        Gain = None
        Head = Tagged("head", Linear(s64 11.0, s64 12.0))
        Blocks = [| Scale(s64 13.0); Identity; Linear(s64 14.0, s64 15.0) |]
    }

[<Fact>]
let ``flattenWithPath gives every leaf its key path, in the order of flatten`` () =
    let m = model ()
    let pairs, def = Tree.flattenWithPath m
    let leaves, plainDef = Tree.flatten m
    Assert.Equal(plainDef, def)
    Assert.Equal(leaves.Length, pairs.Length)
    Array.iter2 (fun (_, a: Tensor) b -> Assert.Same(a, b)) pairs leaves
    // Leaves are numbered 1..15 in declaration order; the map (sorted by key) has "in" first.
    Assert.Equal<float[]>(
        Array.append [| 3.0; 4.0; 1.0; 2.0 |] (Array.init 11 (fun i -> float (i + 5))),
        leaves |> Array.map (fun t -> t.ToScalar())
    )

    Assert.Equal<string[]>(
        [|
            "Hidden/in/TauMem"
            "Hidden/in/TauSyn"
            "Hidden/out/TauMem"
            "Hidden/out/TauSyn"
            "Stack/0"
            "Stack/1"
            "Pair/0"
            "Pair/1/0"
            "Pair/1/1"
            "Bias" // Some adds no key
            "Head/Tagged/inner/Linear/w" // a case, then the field of a case with several
            "Head/Tagged/inner/Linear/b"
            "Blocks/0/Scale" // a case with one field: no field name
            "Blocks/2/Linear/w"
            "Blocks/2/Linear/b"
        |],
        names m
    )

    Assert.Equal<string[]>(
        [|
            """.Hidden["in"].TauMem"""
            """.Hidden["in"].TauSyn"""
            """.Hidden["out"].TauMem"""
            """.Hidden["out"].TauSyn"""
            ".Stack[0]"
            ".Stack[1]"
            ".Pair[0]"
            ".Pair[1][0]"
            ".Pair[1][1]"
            ".Bias"
            ".Head.Tagged.inner.Linear.w"
            ".Head.Tagged.inner.Linear.b"
            ".Blocks[0].Scale"
            ".Blocks[2].Linear.w"
            ".Blocks[2].Linear.b"
        |],
        displays m
    )

    // A tensor is its own root: the empty path.
    Assert.Equal<string[]>([| "" |], names (s64 1.0))
    Assert.Equal<string[]>([| "" |], displays (s64 1.0))
    Assert.Equal<string[]>([| "0"; "1" |], names (struct (s64 1.0, s64 2.0)))

[<Fact>]
let ``layer parameters: a child's index, then a tensor's name, without the case names`` () =
    let p =
        Children
            [
                Weights(Map [ "W", s64 1.0; "b", s64 2.0 ])
                NoParams
                Children [ Weights(Map [ "W", s64 3.0 ]) ]
            ]

    Assert.Equal<string[]>([| "0/W"; "0/b"; "2/0/W" |], names p)
    Assert.Equal<string[]>([| """[0]["W"]"""; """[0]["b"]"""; """[2][0]["W"]""" |], displays p)
    Assert.Equal<string[]>([| "W" |], names (Weights(Map [ "W", s64 1.0 ])))
    // A network from the layer combinators.
    let net =
        Layers.serial
            [
                Layers.dense 4
                Layers.lif Snn.Lif.defaults
                Layers.denseWith
                    { Layers.denseDefaults with
                        Bias = true
                    }
                    2
            ]

    let init, _ = Layer.init net (Random.key 1L) [| 3 |]
    Assert.Equal<string[]>([| "0/W"; "2/W"; "2/b" |], names init)

[<Fact>]
let ``keys are escaped in names so that '/' only separates keys and names are safe zip members`` () =
    let m =
        Map
            [
                "a/b", s64 1.0
                "..", s64 2.0
                ".", s64 3.0
                "50%", s64 4.0
                """x:y\z*?"<>|""", s64 5.0
                "tab\there", s64 6.0
                "ünïcode", s64 7.0
            ]

    let expected =
        dict
            [
                "a/b", "a%2Fb"
                "..", "%2E%2E"
                ".", "%2E"
                "50%", "50%25"
                """x:y\z*?"<>|""", "x%3Ay%5Cz%2A%3F%22%3C%3E%7C"
                "tab\there", "tab%09here"
                "ünïcode", "ünïcode"
            ]

    for path, _ in Tree.leavesWithPath m do
        match path.Keys with
        | [ PathKey.Key(:? string as k) ] -> Assert.Equal(expected[k], KeyPath.toName path)
        | keys -> failwith $"unexpected keys %A{keys}"

    // The display form quotes string keys with escapes; other key types show their string form.
    Assert.Equal<string[]>([| """["say \"hi\" \\ bye"]""" |], displays (Map [ """say "hi" \ bye""", s64 1.0 ]))
    Assert.Equal<string[]>([| "[2]"; "[10]" |], displays (Map [ 10, s64 1.0; 2, s64 2.0 ]))
    Assert.Equal<string[]>([| "2"; "10" |], names (Map [ 10, s64 1.0; 2, s64 2.0 ]))
    Assert.Equal<string[]>([| "0.5" |], names (Map [ 0.5, s64 1.0 ]))
    let d = Dictionary<string, Tensor>()
    d["w"] <- s64 1.0
    Assert.Equal<string[]>([| "w" |], names d)

[<Fact>]
let ``ITree children are known by index, IKeyedTree children by their keys`` () =
    Assert.Equal<string[]>([| "0"; "1" |], names (Pair(s64 1.0, s64 2.0, "label")))
    Assert.Equal<string[]>([| "x/left"; "x/right/0" |], names (Map [ "x", Named(s64 1.0, s64 2.0, "t") ]))
    let rebuilt = Tree.mapWithPath (fun _ t -> t * 2.0) (Named(s64 1.0, s64 2.0, "t"))
    Assert.Equal(4.0, rebuilt.Right.ToScalar())
    assertThrowsArg [ "BadKeys"; "1 children but 0 ChildKeys" ] (fun () -> Tree.flattenWithPath (BadKeys(s64 1.0)))

[<Fact>]
let ``leaves whose paths would coincide are an error naming the path`` () =
    assertThrowsArg [ "Tree.flattenWithPath"; "'opaque'"; "distinct string forms" ] (fun () ->
        Tree.flattenWithPath (Map [ Opaque 1, s64 1.0; Opaque 2, s64 2.0 ]))
    // Plain flattening does not need the paths and still works.
    Assert.Equal(2, (Tree.leaves (Map [ Opaque 1, s64 1.0; Opaque 2, s64 2.0 ])).Length)

[<Fact>]
let ``mapWithPath sees each leaf's path; KeyPath.contains selects by key`` () =
    let m = model ()

    let scaled =
        Tree.mapWithPath (fun p t -> if KeyPath.contains "TauMem" p then t * 100.0 else t) m

    Assert.Equal(300.0, scaled.Hidden["in"].TauMem.ToScalar())
    Assert.Equal(4.0, scaled.Hidden["in"].TauSyn.ToScalar())
    Assert.Equal(100.0, scaled.Hidden["out"].TauMem.ToScalar())
    Assert.Equal(5.0, scaled.Stack[0].ToScalar())

    let withNames =
        Tree.mapWithPath (fun p t -> if KeyPath.toName p = "Pair/1/0" then -t else t) m

    Assert.Equal(-8.0, (fst (snd withNames.Pair)).ToScalar())
    Assert.True(KeyPath.contains "1" (KeyPath.ofKeys [ PathKey.Field "Stack"; PathKey.Index 1 ]))
    Assert.False(KeyPath.contains "Stack/1" (KeyPath.ofKeys [ PathKey.Field "Stack"; PathKey.Index 1 ]))
    Assert.Equal(KeyPath.ofKeys [ PathKey.Field "a"; PathKey.Key "b" ], KeyPath.ofKeys [ PathKey.Field "a"; PathKey.Key "b" ])

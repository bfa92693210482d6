/// The analysis of a graph before it runs: validation with errors that name the node, the shape of
/// every node's signal, and the strongly connected components in topological order.
module internal SnnFunc.GraphCheck

open System
open SnnFunc.NameLists
open System.Collections.Generic

let fail (message: string) : 'a =
    invalidArg "graph" $"Graph: %s{message}"

/// What a run needs to know about a graph.
type Analysis =
    {
        Graph: Graph
        Nodes: Map<string, Node>
        Preds: Map<string, string list>
        Succs: Map<string, string list>
        /// The per-sample shape of each node's output signal.
        Shapes: Map<string, int[]>
        /// The components, each a list of node names, in an order where every edge between two
        /// components goes forward.
        Components: string list list
        /// Nodes on a cycle (a component of several nodes, or a node with an edge to itself).
        Cyclic: Set<string>
    }

let private fmt = Shape.format

/// Tarjan's strongly connected components (iterative: no recursion depth limit), in topological
/// order of the condensation; nodes within a component in insertion order.
let private components (names: string list) (succs: Map<string, string list>) =
    let index = Dictionary<string, int>()
    let low = Dictionary<string, int>()
    let onStack = HashSet<string>()
    let stack = Stack<string>()
    let result = ResizeArray<string list>()
    let mutable counter = 0
    let position = names |> List.mapi (fun i n -> n, i) |> Map.ofList

    for root in names do
        if not (index.ContainsKey root) then
            // Each frame: a node and the successors still to visit.
            let work = Stack<string * string list>()
            index[root] <- counter
            low[root] <- counter
            counter <- counter + 1
            stack.Push root
            onStack.Add root |> ignore
            work.Push(root, succs[root])

            while work.Count > 0 do
                let v, rest = work.Pop()

                match rest with
                | w :: more ->
                    work.Push(v, more)

                    if not (index.ContainsKey w) then
                        index[w] <- counter
                        low[w] <- counter
                        counter <- counter + 1
                        stack.Push w
                        onStack.Add w |> ignore
                        work.Push(w, succs[w])
                    elif onStack.Contains w then
                        low[v] <- min low[v] index[w]
                | [] ->
                    if work.Count > 0 then
                        let parent, _ = work.Peek()
                        low[parent] <- min low[parent] low[v]

                    if low[v] = index[v] then
                        let comp = ResizeArray<string>()
                        let mutable fin = false

                        while not fin do
                            let w = stack.Pop()
                            onStack.Remove w |> ignore
                            comp.Add w
                            fin <- (w = v)

                        result.Add(comp |> Seq.sortBy (fun n -> position[n]) |> List.ofSeq)

    // Tarjan emits components in reverse topological order.
    result |> Seq.rev |> List.ofSeq

/// Validates a graph and computes what a run needs. Errors name the node or edge at fault.
let analyse (g: Graph) : Analysis =
    let names = g.Nodes |> List.map fst

    for n in names do
        if String.IsNullOrWhiteSpace n then
            fail "a node has an empty name"

    match names |> List.countBy id |> List.tryFind (fun (_, k) -> k > 1) with
    | Some(n, _) -> fail $"the name '%s{n}' is used by more than one node"
    | None -> ()

    let nodes = Map.ofList g.Nodes

    for a, b in g.Edges do
        for n in [ a; b ] do
            if not (nodes.ContainsKey n) then
                fail $"the edge '%s{a}' -> '%s{b}' names no node '%s{n}' (nodes: %s{listed (names)})"

    match g.Edges |> List.countBy id |> List.tryFind (fun (_, k) -> k > 1) with
    | Some((a, b), _) -> fail $"the edge '%s{a}' -> '%s{b}' is given twice"
    | None -> ()

    let preds =
        names
        |> List.map (fun n -> n, g.Edges |> List.filter (fun (_, b) -> b = n) |> List.map fst)
        |> Map.ofList

    let succs =
        names
        |> List.map (fun n -> n, g.Edges |> List.filter (fun (a, _) -> a = n) |> List.map snd)
        |> Map.ofList

    // Shapes: sources and populations declare theirs; a projection delivers its declared output
    // shape or that of the populations it feeds; a transform's follows from its input.
    let declared n =
        match nodes[n] with
        | Source shape -> Some shape
        | Population(shape, _) -> Some shape
        | Synapses { OutShape = Some s } -> Some s
        | _ -> None

    let shapes = Dictionary<string, int[]>()
    let visiting = HashSet<string>()

    // [C_in; spatial...] to [C_out; spatial'...], with the checks that name the node.
    let convOutput (n: string) (spec: ConvSpec) (input: int[]) =
        let axes = spec.Kernel.Length

        if input.Length <> axes + 1 then
            fail $"the convolution '%s{n}' has a %d{axes}-d kernel and needs input [channels; %d{axes} spatial axes], got %s{fmt input}"

        if input[0] % spec.Groups <> 0 then
            fail $"the convolution '%s{n}' has %d{spec.Groups} groups, which do not divide its %d{input[0]} input channels"

        let size = spec.OutputSize input[1..]

        if size |> Array.exists (fun d -> d < 1) then
            fail $"the convolution '%s{n}' leaves no output for input %s{fmt input}: its dilated kernel does not fit"

        Array.append [| spec.OutChannels |] size

    let poolOutput (n: string) (o: Pool2dOptions) (input: int[]) =
        if input.Length <> 3 then
            fail $"the pool '%s{n}' needs input [channels; height; width], got %s{fmt input}"

        let (kh, kw), (sh, sw), (ph, pw) = o.Kernel, o.Stride, o.Padding

        if
            kh < 1
            || kw < 1
            || sh < 1
            || sw < 1
            || ph < 0
            || pw < 0
            || 2 * ph > kh
            || 2 * pw > kw
        then
            fail
                $"the pool '%s{n}' needs positive kernel and stride and padding of at most half the kernel, got kernel (%d{kh}, %d{kw}), stride (%d{sh}, %d{sw}), padding (%d{ph}, %d{pw})"

        let out (x, k, st, pad) =
            if x + 2 * pad < k then 0 else (x + 2 * pad - k) / st + 1

        let h, w = out (input[1], kh, sh, ph), out (input[2], kw, sw, pw)

        if h < 1 || w < 1 then
            fail $"the pool '%s{n}' leaves no output for input %s{fmt input}"

        [| input[0]; h; w |]

    let rec shapeOf (n: string) : int[] =
        match shapes.TryGetValue n with
        | true, s -> s
        | _ ->
            if not (visiting.Add n) then
                fail $"the shape of '%s{n}' cannot be inferred: it lies on a cycle of transforms"

            let s =
                match declared n, nodes[n] with
                | Some s, _ -> s
                | None, Synapses { Kind = Conv spec } ->
                    match preds[n] with
                    | [] -> fail $"the projection '%s{n}' has no input: connect a source or population to it"
                    | first :: _ -> convOutput n spec (shapeOf first)
                | None, Synapses _ ->
                    let targets = succs[n]

                    if targets.IsEmpty then
                        fail $"the projection '%s{n}' leads nowhere: it has no outgoing edge"

                    let targetShapes =
                        targets
                        |> List.map (fun t ->
                            match nodes[t] with
                            | Population(s, _) -> t, s
                            | _ ->
                                fail
                                    $"the projection '%s{n}' feeds '%s{t}', which is not a population: give the projection its output shape (Projection.withOutShape)")

                    let firstTarget, first = targetShapes.Head

                    for t, ts in targetShapes do
                        if ts <> first then
                            fail $"the projection '%s{n}' feeds '%s{firstTarget}' of shape %s{fmt first} and '%s{t}' of shape %s{fmt ts}"

                    first
                | None, Op(t, given) ->
                    let ps = preds[n]

                    if ps.IsEmpty then
                        fail $"the transform '%s{n}' has no input"

                    let input = shapeOf ps.Head

                    let out =
                        match t with
                        | Flatten(startDim, endDim) ->
                            let r = input.Length
                            let s0 = if startDim < 0 then startDim + r else startDim
                            let e0 = if endDim < 0 then endDim + r else endDim

                            if s0 < 0 || e0 >= r || s0 > e0 then
                                fail $"the flatten '%s{n}' cannot merge axes %d{startDim}..%d{endDim} of its input %s{fmt input}"

                            Array.concat [ input[.. s0 - 1]; [| Shape.count input[s0..e0] |]; input[e0 + 1 ..] ]
                        | SumPool2d o
                        | AvgPool2d o -> poolOutput n o input
                        | NeuronDelay(_, timeUnit, dt, maxSteps) ->
                            let positive x = x > 0.0 && not (Double.IsInfinity x)

                            if not (positive timeUnit && positive dt) || maxSteps < 1 then
                                fail
                                    $"the delay '%s{n}' needs a positive finite time unit and step and at least 1 step of history, got %g{timeUnit}, %g{dt} and %d{maxSteps}"

                            input
                        | _ -> input

                    match given with
                    | Some d when Shape.count d <> Shape.count out ->
                        fail $"the node '%s{n}' declares shape %s{fmt d}, but its input %s{fmt out} has another number of elements"
                    | Some d -> d
                    | None -> out
                | None, _ -> fail $"internal error: no shape rule for '%s{n}'"

            visiting.Remove n |> ignore
            shapes[n] <- s
            s

    let shapes = names |> List.map (fun n -> n, shapeOf n) |> Map.ofList

    // Every node sums inputs of one shape: its own for populations, any one for the others.
    for n in names do
        let ps = preds[n]

        let sameShapes () =
            for p in ps do
                if shapes[p] <> shapes[ps.Head] then
                    fail $"'%s{n}' sums '%s{ps.Head}' of shape %s{fmt shapes[ps.Head]} and '%s{p}' of shape %s{fmt shapes[p]}"

        match nodes[n] with
        | Source _ ->
            if not ps.IsEmpty then
                fail $"the source '%s{n}' has an incoming edge from '%s{ps.Head}'; sources only emit"
        | Synapses proj ->
            if ps.IsEmpty then
                fail $"the projection '%s{n}' has no input: connect a source or population to it"

            sameShapes ()
            let first = shapes[ps.Head]
            let inputs = Shape.count first

            match proj.Kind with
            | Sparse mask when mask.Shape <> [| inputs; Shape.count shapes[n] |] ->
                fail
                    $"the mask of the projection '%s{n}' has shape %s{fmt mask.Shape}, but %s{fmt first} to %s{fmt shapes[n]} needs [%d{inputs}; %d{Shape.count shapes[n]}]"
            | _ -> ()

            match proj.Delay with
            | PerInputSteps d when d.Length <> inputs ->
                fail $"the projection '%s{n}' has %d{d.Length} per-input delays for %d{inputs} inputs"
            | _ -> ()
        | Population(shape, _) ->
            for p in ps do
                if shapes[p] <> shape then
                    fail $"the population '%s{n}' of shape %s{fmt shape} receives '%s{p}' of shape %s{fmt shapes[p]}"
        | Op _ -> sameShapes ()

    let comps = components names succs

    let cyclic =
        comps
        |> List.filter (fun c -> c.Length > 1 || List.contains c.Head succs[c.Head])
        |> List.concat
        |> Set.ofList

    for c in comps do
        if c |> List.exists cyclic.Contains then
            if
                not (
                    c
                    |> List.exists (fun n ->
                        match nodes[n] with
                        | Population _ -> true
                        | _ -> false)
                )
            then
                fail $"the cycle through %s{chained (c)} has no population: recurrence needs a neuron to delay through"

    {
        Graph = g
        Nodes = nodes
        Preds = preds
        Succs = succs
        Shapes = shapes
        Components = comps
        Cyclic = cyclic
    }

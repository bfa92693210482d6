/// Pytrees: nested containers whose leaves are tensors, flattened to a leaf array and rebuilt from
/// one. Reflection happens once per type; the resulting codec is cached.
///
/// Containers: F# records, tuples (System.Tuple and ValueTuple), lists, arrays, maps, options and
/// unions; Dictionary, ReadOnlyDictionary, List, ReadOnlyCollection and the lists of C# collection
/// expressions; types implementing ITree; and C# records and
/// plain classes or structs, through their public instance properties (see `objectCodec`).
namespace SnnFunc

open System
open System.Collections
open System.Collections.Concurrent
open System.Collections.Generic
open System.Collections.ObjectModel
open System.Reflection
open Microsoft.FSharp.Reflection

/// Implemented by types (C# classes too) that take part in pytrees: the children are tensors or
/// other pytree values, and Rebuild makes a new instance from children of the same kinds.
type ITree =
    /// The children, in a fixed order.
    abstract Children: obj[]
    /// A new instance with the given children (same count and order as Children).
    abstract Rebuild: children: obj[] -> obj

/// The structure of a pytree without its leaves: compared to check that two trees match.
[<CustomEquality; NoComparison>]
type TreeDef =
    /// A tensor.
    | Leaf
    /// A value that is not a container (number, string, function ...): kept as it is.
    | Static of value: obj
    /// A container of a type with its children's structures; `Rebuild` makes it from children.
    | Node of typ: Type * tag: int * children: TreeDef[] * rebuild: (obj[] -> obj)

    /// Number of tensor leaves.
    member d.LeafCount =
        match d with
        | Leaf -> 1
        | Static _ -> 0
        | Node(_, _, children, _) -> children |> Array.sumBy (fun c -> c.LeafCount)

    override d.Equals(other) =
        match other with
        | :? TreeDef as o ->
            match d, o with
            | Leaf, Leaf -> true
            | Static a, Static b -> Object.Equals(a, b)
            | Node(t1, g1, c1, _), Node(t2, g2, c2, _) -> t1 = t2 && g1 = g2 && c1.Length = c2.Length && Array.forall2 (=) c1 c2
            | _ -> false
        | _ -> false

    override d.GetHashCode() =
        match d with
        | Leaf -> 1
        | Static v -> if isNull v then 0 else v.GetHashCode()
        | Node(t, g, c, _) -> HashCode.Combine(t, g, c.Length)

    /// A readable description, e.g. "Params { W: *; B: * }" where * is a tensor.
    override d.ToString() =
        match d with
        | Leaf -> "*"
        | Static v -> if isNull v then "null" else string v
        | Node(t, _, c, _) ->
            let inner = String.Join("; ", c |> Array.map string)
            $"%s{t.Name}(%s{inner})"

/// How to take apart and rebuild values of one type.
type private Codec =
    | LeafCodec
    | StaticCodec
    /// Children of a value (and a tag distinguishing union cases), and the rebuild from children.
    | NodeCodec of children: (obj -> int * obj[]) * rebuild: (int -> obj[] -> obj)
    /// A type that holds tensors but cannot be rebuilt: flattening it is an error with this message.
    | UnrebuildableCodec of message: string

/// Pytree functions: flatten, unflatten, map, map2, leaves.
module Tree =

    let private codecs = ConcurrentDictionary<Type, Codec>()

    let private isStaticType (t: Type) =
        t.IsPrimitive
        || t.IsEnum
        || t = typeof<string>
        || t = typeof<decimal>
        || t = typeof<DType>
        || FSharpType.IsFunction t
        || t = typeof<unit>

    /// The elements of a sequence container, in order (its children).
    let private elements (v: obj) = [| for x in (v :?> IEnumerable) -> x |]

    /// A typed array (elem[]) holding the rebuilt children.
    let private typedArray (elem: Type) (children: obj[]) : Array =
        let arr = Array.CreateInstance(elem, children.Length)
        children |> Array.iteri (fun i c -> arr.SetValue(c, i))
        arr

    /// A container rebuilt from a typed array of its children by `make`.
    let private sequenceCodec (elem: Type) (make: Array -> obj) =
        NodeCodec((fun v -> 0, elements v), (fun _ children -> make (typedArray elem children)))

    let private listCodec (elem: Type) =
        let ofArray =
            let m =
                typeof<list<int>>.Assembly.GetType("Microsoft.FSharp.Collections.ListModule").GetMethod("OfArray")

            m.MakeGenericMethod elem

        sequenceCodec elem (fun arr -> ofArray.Invoke(null, [| box arr |]))

    let private mapInfos =
        ConcurrentDictionary<Type, Reflection.PropertyInfo * Reflection.PropertyInfo * Type * Reflection.MethodInfo>()

    /// Key/Value accessors, the (key, value) tuple type and Map.ofArray for a Map type.
    let private makeMapInfo (t: Type) =
        let args: Type[] = t.GetGenericArguments()
        let tupleType = FSharpType.MakeTupleType [| args[0]; args[1] |]
        let kvType = typedefof<KeyValuePair<_, _>>.MakeGenericType(args)

        let ofArray =
            typeof<Map<int, int>>.Assembly.GetType("Microsoft.FSharp.Collections.MapModule").GetMethod("OfArray").MakeGenericMethod(args)

        kvType.GetProperty "Key", kvType.GetProperty "Value", tupleType, ofArray

    /// makeMapInfo, cached per type.
    let private mapCodec (t: Type) =
        mapInfos.GetOrAdd(t, Func<_, _>(makeMapInfo))

    /// Types whose public properties are not taken apart: .NET and F# library types, collections,
    /// delegates, abstract types.
    let private isOpaque (t: Type) =
        let ns = if isNull t.Namespace then "" else t.Namespace

        t.IsAbstract
        || t.IsInterface
        || t.IsPointer
        || t.IsByRef
        || t.ContainsGenericParameters
        || typeof<Delegate>.IsAssignableFrom t
        || typeof<IEnumerable>.IsAssignableFrom t
        || t.Assembly = typeof<obj>.Assembly
        || t.Assembly = typeof<list<int>>.Assembly
        || ns = "System"
        || ns.StartsWith "System."
        || ns.StartsWith "Microsoft."

    /// The public instance properties that objectCodec takes apart (readable, not indexers).
    let private publicProperties (t: Type) =
        t.GetProperties(BindingFlags.Public ||| BindingFlags.Instance)
        |> Array.filter (fun p ->
            p.CanRead
            && not (isNull (p.GetGetMethod()))
            && p.GetIndexParameters().Length = 0)

    /// Public instance fields (not pytree children: only properties are).
    let private publicFields (t: Type) =
        t.GetFields(BindingFlags.Public ||| BindingFlags.Instance)

    /// Whether a value of static type `t` can hold a tensor anywhere inside: a reachability question
    /// on the type graph (element and generic argument types, record and union fields, the public
    /// properties of other types). `obj` and the interfaces and abstract classes outside the .NET
    /// libraries may hold anything, so they count as holding one.
    let private mayHoldTensor (t: Type) =
        let visited = HashSet<Type>()

        let rec reaches (t: Type) =
            if t = typeof<Tensor> || t = typeof<obj> || typeof<ITree>.IsAssignableFrom t then
                true
            elif isStaticType t || typeof<Delegate>.IsAssignableFrom t || not (visited.Add t) then
                false
            elif t.IsArray || t.IsByRef || t.IsPointer then
                reaches (t.GetElementType())
            elif t.IsGenericParameter then
                true
            elif t.IsGenericType && Array.exists reaches (t.GetGenericArguments()) then
                true
            elif FSharpType.IsRecord(t, true) then
                FSharpType.GetRecordFields(t, true)
                |> Array.exists (fun f -> reaches f.PropertyType)
            elif FSharpType.IsUnion(t, true) then
                FSharpType.GetUnionCases(t, true)
                |> Array.exists (fun c -> c.GetFields() |> Array.exists (fun f -> reaches f.PropertyType))
            elif isOpaque t then
                // Library types hold tensors only through their generic arguments (checked above);
                // a user's interface or abstract class may stand for anything.
                let ns = if isNull t.Namespace then "" else t.Namespace
                let library = ns = "System" || ns.StartsWith "System." || ns.StartsWith "Microsoft."

                (t.IsInterface || t.IsAbstract)
                && not library
                && t.Assembly <> typeof<obj>.Assembly
                && t.Assembly <> typeof<list<int>>.Assembly
            else
                publicProperties t |> Array.exists (fun p -> reaches p.PropertyType)
                || publicFields t |> Array.exists (fun f -> reaches f.FieldType)

        reaches t

    /// C# records and plain classes or structs (so that C# parameter types work wherever F# records
    /// do): the children are the public instance properties that the type can be rebuilt from. The
    /// type is rebuilt through a public constructor whose parameters each match a property by name
    /// (case-insensitive) and type — positional records, immutable classes, anonymous types — or a
    /// public parameterless one (any struct), and then the setters (init-only ones included) of the
    /// properties the constructor does not take. A property that is neither a constructor parameter
    /// nor settable is taken to be derived (like the C# facade's `Batch.Count`, recomputed by the
    /// rebuilt instance) if it cannot hold a tensor; if it can, the type cannot be rebuilt
    /// faithfully: flattening it raises an ArgumentException naming the type and the property,
    /// rather than silently treating a parameter record as a constant (no gradient). A type that
    /// cannot hold a tensor at all stays a static value, kept as it is.
    let private objectCodec (t: Type) : Codec =
        if isOpaque t || not (mayHoldTensor t) then
            StaticCodec
        else
            let props = publicProperties t

            let field = publicFields t |> Array.tryFind (fun f -> mayHoldTensor f.FieldType)

            let settable (p: PropertyInfo) = not (isNull (p.GetSetMethod()))

            /// For one constructor: the properties matching its parameters in order, the properties
            /// to set afterwards, and the first property that holds a tensor but is left out.
            let plan (c: ConstructorInfo option) =
                let ps =
                    match c with
                    | Some c -> c.GetParameters()
                    | None -> [||]

                let ordered =
                    ps
                    |> Array.choose (fun p ->
                        props
                        |> Array.tryFind (fun q ->
                            not (isNull p.Name)
                            && String.Equals(q.Name, p.Name, StringComparison.OrdinalIgnoreCase)
                            && q.PropertyType = p.ParameterType))

                if ordered.Length <> ps.Length || (Array.distinct ordered).Length <> ps.Length then
                    None
                else
                    let rest = props |> Array.filter (fun p -> not (Array.contains p ordered))
                    let setters = rest |> Array.filter settable

                    let lost =
                        rest
                        |> Array.tryFind (fun p -> not (settable p) && mayHoldTensor p.PropertyType)

                    Some(c, ordered, setters, lost)

            let candidates =
                [|
                    for c in t.GetConstructors() do
                        yield! Option.toArray (plan (Some c))
                    if t.IsValueType then
                        yield! Option.toArray (plan None)
                |]
                // The most constructor parameters first: positional records before their copy
                // constructor's absence, full constructors before partial ones.
                |> Array.sortByDescending (fun (_, ordered: PropertyInfo[], _, _) -> ordered.Length)

            match candidates |> Array.tryFind (fun (_, _, _, lost) -> lost.IsNone) with
            | _ when field.IsSome ->
                UnrebuildableCodec(
                    $"Tree: type '%s{t.FullName}' holds tensors in the public field '%s{field.Value.Name}'; "
                    + "pytrees take apart properties, not fields: make it a property or implement ITree"
                )
            | Some(ctor, ordered, setters, _) ->
                let children = Array.append ordered setters

                let read (v: obj) =
                    0, children |> Array.map (fun p -> p.GetValue v)

                let rebuild _ (c: obj[]) =
                    let o =
                        match ctor with
                        | Some ctor -> ctor.Invoke c[.. ordered.Length - 1]
                        | None -> Activator.CreateInstance t

                    setters |> Array.iteri (fun i p -> p.SetValue(o, c[ordered.Length + i]))
                    o

                NodeCodec(read, rebuild)
            | None ->
                // Name the property a rebuild would lose: the one the best constructor leaves out,
                // or (no constructor fits at all) the first tensor-holding property without setter.
                let culprit =
                    candidates
                    |> Array.tryPick (fun (_, _, _, lost) -> lost)
                    |> Option.orElse (
                        props
                        |> Array.tryFind (fun p -> not (settable p) && mayHoldTensor p.PropertyType)
                    )

                let what =
                    match culprit with
                    | Some p -> $"property '%s{p.Name}' (%s{p.PropertyType.Name}) has no setter and no matching constructor parameter"
                    | None -> "no public constructor takes parameters matching its properties by name and type"

                UnrebuildableCodec(
                    $"Tree: type '%s{t.FullName}' holds tensors but cannot be rebuilt from its public properties: %s{what}. "
                    + "Give it a constructor whose parameters match the properties, setters, or implement ITree "
                    + "(a computed property can also become a method)"
                )

    let rec private codecOf (t: Type) : Codec =
        codecs.GetOrAdd(t, Func<Type, Codec>(build))

    and private build (t: Type) : Codec =
        if t = typeof<Tensor> then
            LeafCodec
        elif isStaticType t then
            StaticCodec
        elif typeof<ITree>.IsAssignableFrom t then
            NodeCodec((fun v -> 0, (v :?> ITree).Children), (fun _ _ -> invalidOp "ITree rebuilds from its instance"))
        elif t.IsArray then
            sequenceCodec (t.GetElementType()) box
        elif t.IsGenericType && t.GetGenericTypeDefinition() = typedefof<list<_>> then
            listCodec (t.GetGenericArguments()[0])
        elif
            t.IsGenericType
            && t.GetGenericTypeDefinition() = typedefof<ReadOnlyCollection<_>>
        then
            sequenceCodec (t.GetGenericArguments()[0]) (fun arr -> Activator.CreateInstance(t, [| box arr |]))
        elif
            t.IsGenericType
            && t.Name.StartsWith "<>z__ReadOnly"
            && t.GetGenericArguments().Length = 1
        then
            // The read-only lists the C# compiler synthesises for collection expressions typed
            // IEnumerable<T>, IReadOnlyList<T> ...: rebuilt as a T[], which implements those interfaces.
            sequenceCodec (t.GetGenericArguments()[0]) box
        elif t.IsGenericType && t.GetGenericTypeDefinition() = typedefof<List<_>> then
            NodeCodec(
                (fun v -> 0, elements v),
                fun _ children ->
                    let l = Activator.CreateInstance t :?> IList
                    children |> Array.iter (l.Add >> ignore)
                    box l
            )
        elif FSharpType.IsTuple t then
            let reader = FSharpValue.PreComputeTupleReader t
            let ctor = FSharpValue.PreComputeTupleConstructor t
            NodeCodec((fun v -> 0, reader v), (fun _ c -> ctor c))
        elif FSharpType.IsRecord(t, true) then
            let reader = FSharpValue.PreComputeRecordReader(t, true)
            let ctor = FSharpValue.PreComputeRecordConstructor(t, true)
            NodeCodec((fun v -> 0, reader v), (fun _ c -> ctor c))
        elif FSharpType.IsUnion(t, true) then
            let tagReader = FSharpValue.PreComputeUnionTagReader(t, true)
            let cases = FSharpType.GetUnionCases(t, true)

            let readers =
                cases |> Array.map (fun c -> FSharpValue.PreComputeUnionReader(c, true))

            let ctors =
                cases |> Array.map (fun c -> FSharpValue.PreComputeUnionConstructor(c, true))

            NodeCodec(
                (fun v ->
                    let tag = tagReader v
                    tag, readers[tag]v),
                fun tag c -> ctors[tag]c
            )
        else
            objectCodec t

    /// Appends the leaves of `value` (of static type `t`) to `leaves` and returns its structure.
    let rec private flattenInto (t: Type) (value: obj) (leaves: ResizeArray<Tensor>) : TreeDef =
        // The runtime type decides (a field typed obj or an interface may hold any pytree).
        let t = if isNull value then t else value.GetType()

        match value with
        | :? Tensor as x ->
            leaves.Add x
            Leaf
        | null -> Static null
        | :? ITree as tree ->
            let children = tree.Children
            let defs = children |> Array.map (fun c -> flattenInto typeof<obj> c leaves)
            Node(t, 0, defs, (fun c -> tree.Rebuild c))
        | _ when t.IsGenericType && t.GetGenericTypeDefinition() = typedefof<Map<_, _>> ->
            let _, _, tupleType, ofArray = mapCodec t

            keyedNode t value leaves (fun keys children ->
                let arr = Array.CreateInstance(tupleType, children.Length)

                children
                |> Array.iteri (fun i c -> arr.SetValue(FSharpValue.MakeTuple([| keys[i]; c |], tupleType), i))

                ofArray.Invoke(null, [| arr |]))
        | _ when
            t.IsGenericType
            && (t.GetGenericTypeDefinition() = typedefof<Dictionary<_, _>>
                || t.GetGenericTypeDefinition() = typedefof<ReadOnlyDictionary<_, _>>)
            ->
            let readOnly = t.GetGenericTypeDefinition() = typedefof<ReadOnlyDictionary<_, _>>

            keyedNode t value leaves (fun keys children ->
                let inner =
                    if readOnly then
                        typedefof<Dictionary<_, _>>.MakeGenericType(t.GetGenericArguments())
                    else
                        t

                let d = Activator.CreateInstance inner :?> IDictionary
                children |> Array.iteri (fun i c -> d[keys[i]] <- c)
                if readOnly then Activator.CreateInstance(t, d) else box d)
        | _ ->
            match codecOf t with
            | LeafCodec -> failwith "unreachable: tensors are matched above"
            | StaticCodec -> Static value
            | UnrebuildableCodec message -> invalidArg "tree" message
            | NodeCodec(children, rebuild) ->
                let tag, cs = children value
                let defs = cs |> Array.map (fun c -> flattenInto typeof<obj> c leaves)
                Node(t, tag, defs, rebuild tag)

    /// A keyed container (Map, Dictionary): the keys are part of the structure (static children
    /// first), the values are flattened; `rebuild keys values` makes a new container.
    and private keyedNode (t: Type) (value: obj) (leaves: ResizeArray<Tensor>) (rebuild: obj[] -> obj[] -> obj) : TreeDef =
        let keyProp, valueProp, _, _ = mapCodec t
        let pairs = elements value
        let keys = pairs |> Array.map (fun kv -> keyProp.GetValue kv)

        let defs =
            pairs
            |> Array.map (fun kv -> flattenInto typeof<obj> (valueProp.GetValue kv) leaves)

        Node(t, 0, Array.append (keys |> Array.map Static) defs, (fun c -> rebuild keys c[keys.Length ..]))

    /// The leaves of a pytree (depth-first, in field/element order) and its structure.
    let flatten (tree: 'T) : Tensor[] * TreeDef =
        let leaves = ResizeArray()
        let def = flattenInto typeof<'T> (box tree) leaves
        leaves.ToArray(), def

    let rec private rebuild (def: TreeDef) (leaves: Tensor[]) (position: byref<int>) : obj =
        match def with
        | Leaf ->
            let x = leaves[position]
            position <- position + 1
            box x
        | Static v -> v
        | Node(_, _, children, make) ->
            let values = Array.zeroCreate children.Length

            for i in 0 .. children.Length - 1 do
                values[i] <- rebuild children[i] leaves &position

            make values

    /// Rebuilds a pytree of the given structure from its leaves.
    let unflatten<'T> (def: TreeDef) (leaves: Tensor[]) : 'T =
        if leaves.Length <> def.LeafCount then
            invalidArg "leaves" $"Tree.unflatten: the structure has %d{def.LeafCount} leaves but %d{leaves.Length} were given"

        let mutable position = 0
        rebuild def leaves &position :?> 'T

    /// The tensor leaves of a pytree.
    let leaves (tree: 'T) : Tensor[] = fst (flatten tree)

    /// The same structure with f applied to every leaf.
    let map (f: Tensor -> Tensor) (tree: 'T) : 'T =
        let leaves, def = flatten tree
        unflatten def (Array.map f leaves)

    /// Combines two trees of the same structure leaf by leaf.
    let map2 (f: Tensor -> Tensor -> Tensor) (a: 'T) (b: 'T) : 'T =
        let la, da = flatten a
        let lb, db = flatten b

        if da <> db then
            invalidArg "b" $"Tree.map2: the trees have different structures: %O{da} and %O{db}"

        unflatten da (Array.map2 f la lb)

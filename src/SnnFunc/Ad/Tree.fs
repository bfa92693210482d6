/// Pytrees: nested containers whose leaves are tensors, flattened to a leaf array and rebuilt from
/// one, and the key path of every leaf (JAX's tree_flatten_with_path). Reflection happens once per
/// type; the resulting codec is cached.
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
open System.Globalization
open System.Reflection
open System.Text
open Microsoft.FSharp.Reflection

/// One key of a key path: how a container reaches one of its children.
[<RequireQualifiedAccess; NoComparison>]
type PathKey =
    /// A named child: a record field, a union case or field, a C# property.
    | Field of name: string
    /// A position: a tuple item, an element of a list or array, a child of an ITree.
    | Index of index: int
    /// An entry of a Map or Dictionary, by its key (shown through its string form).
    | Key of key: obj

/// The keys from the root of a pytree to one of its leaves (JAX's key path), outermost first.
///
/// Two string forms, both unambiguous among the leaves of one tree:
/// - `KeyPath.toName` (C#: the `Path` strings), for files, masks and messages: the keys joined by
///   `/` — a field or case name as it is, an index in decimal, a map key by its string form
///   (invariant culture) — e.g. `hidden/TauMem`, `0/W`, `Layers/2/weight`. In a key,
///   `% / \ : * ? " < > |` and control characters are written `%XX` (their code in hex) and the
///   keys `.` and `..` as `%2E` and `%2E%2E`, so that a name is a valid, safe .npz (zip) member
///   name and `/` only ever separates keys. The root (a tree that is one tensor) is "".
/// - `KeyPath.toString` (`ToString()`), for display, in the style of JAX's keystr: `.Field`, `[0]`,
///   `["key"]` (a string key, quoted with `\` escapes) or `[3]` (another key type), e.g.
///   `["hidden"].TauMem`, `[0].W`, `.Layers[2].weight`.
///
/// Keys by container: record fields, C# properties → the field/property name; tuple items, list,
/// array and List elements → the index; Map/Dictionary entries → the key; `Some` of an option → no
/// key (the value stands where the option does, as JAX's optional values do); a union case → its
/// case name, then, if the case has several fields, the field name (`Linear/w`; F# names unnamed
/// ones Item1, Item2 ...); a union marked `[<NoCaseNamesInKeyPath>]` (the layer `Params`) → no case
/// name; an ITree → the child's index, an IKeyedTree → the keys it gives.
[<NoComparison>]
type KeyPath =
    | KeyPath of PathKey list

    /// The keys, outermost first.
    member p.Keys =
        let (KeyPath keys) = p
        keys

    /// The path of the root itself (no keys).
    static member Root = KeyPath []

    /// The text of one key: a name, an index, a map key's string form.
    static member internal KeyText(key: PathKey) =
        match key with
        | PathKey.Field name -> name
        | PathKey.Index i -> string i
        | PathKey.Key(:? string as s) -> s
        | PathKey.Key(:? IFormattable as f) -> f.ToString(null, CultureInfo.InvariantCulture)
        | PathKey.Key k -> string k

    /// The name form (see the type): keys joined by '/', each escaped.
    member p.Name =
        let escape (text: string) =
            if text = "." || text = ".." then
                text.Replace(".", "%2E")
            else
                let b = StringBuilder(text.Length)

                for c in text do
                    if c < ' ' || c = '\u007f' || "%/\\:*?\"<>|".IndexOf c >= 0 then
                        b.Append('%').Append((int c).ToString("X2")) |> ignore
                    else
                        b.Append c |> ignore

                b.ToString()

        p.Keys |> List.map (KeyPath.KeyText >> escape) |> String.concat "/"

    /// The display form (see the type), like JAX's keystr.
    override p.ToString() =
        p.Keys
        |> List.map (fun key ->
            match key with
            | PathKey.Field name -> "." + name
            | PathKey.Index i -> $"[%d{i}]"
            | PathKey.Key(:? string as s) -> "[\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"]"
            | PathKey.Key _ -> "[" + KeyPath.KeyText key + "]")
        |> String.concat ""

/// Key paths: building them and their string forms (see the KeyPath type).
[<RequireQualifiedAccess>]
module KeyPath =

    /// The path of the root itself (no keys).
    let root = KeyPath []

    /// A path of the given keys, outermost first.
    let ofKeys (keys: PathKey list) = KeyPath keys

    /// The keys, outermost first.
    let keys (path: KeyPath) = path.Keys

    /// The name form: `/`-separated escaped keys, e.g. `hidden/TauMem` (also the .npz member names
    /// of checkpoints and the path strings of the C# facade).
    let toName (path: KeyPath) = path.Name

    /// The display form, like JAX's keystr, e.g. `["hidden"].TauMem`.
    let toString (path: KeyPath) = path.ToString()

    /// Whether one of the keys is `text` (a field or case name, an index in decimal, a map key's
    /// string form), e.g. `KeyPath.contains "TauMem"` to select every membrane time constant.
    let contains (text: string) (path: KeyPath) =
        path.Keys |> List.exists (fun k -> KeyPath.KeyText k = text)

/// Implemented by types (C# classes too) that take part in pytrees: the children are tensors or
/// other pytree values, and Rebuild makes a new instance from children of the same kinds. In key
/// paths a child is known by its index (implement IKeyedTree to give it keys).
type ITree =
    /// The children, in a fixed order.
    abstract Children: obj[]
    /// A new instance with the given children (same count and order as Children).
    abstract Rebuild: children: obj[] -> obj

/// An ITree that gives its children keys in key paths instead of their indices.
type IKeyedTree =
    inherit ITree
    /// One path per child, relative to this node, in the order of Children: one key (a name), several
    /// (an optimizer's per-parameter state is keyed by each parameter's whole path), or
    /// `KeyPath.Root` for a wrapper's lone child that should add no key. The paths must keep the
    /// leaves of a tree distinct (Tree.flattenWithPath checks).
    abstract ChildKeys: KeyPath[]

/// Marks a union whose case names are left out of key paths, because its values are told apart by
/// their children's keys alone: the layer `Params` (`Weights` of a map, `Children` of a list) gives
/// `0/W`, not `Children/0/Weights/W`. A case with several fields still adds its field names.
[<AttributeUsage(AttributeTargets.Class, AllowMultiple = false)>]
type NoCaseNamesInKeyPathAttribute() =
    inherit Attribute()

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
    /// Children of a value (and a tag distinguishing union cases), the rebuild from children, and
    /// the keys by which `keys tag i` reaches child i in key paths (none, one, or a case and a field).
    | NodeCodec of children: (obj -> int * obj[]) * rebuild: (int -> obj[] -> obj) * keys: (int -> int -> PathKey list)
    /// A type that holds tensors but cannot be rebuilt: flattening it is an error with this message.
    | UnrebuildableCodec of message: string

/// Pytree functions: flatten, unflatten, map, map2, leaves, and their forms with key paths.
module Tree =

    let private codecs = ConcurrentDictionary<Type, Codec>()

    /// Children known by their positions (tuples, lists, arrays).
    let private byIndex (_: int) (i: int) = [ PathKey.Index i ]

    /// Children known by names, one per child (record fields, properties).
    let private byName (names: string[]) =
        let keys = names |> Array.map (fun n -> [ PathKey.Field n ])
        fun (_: int) (i: int) -> keys[i]

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
        NodeCodec((fun v -> 0, elements v), (fun _ children -> make (typedArray elem children)), byIndex)

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

                NodeCodec(read, rebuild, byName (children |> Array.map (fun p -> p.Name)))
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
            NodeCodec((fun v -> 0, (v :?> ITree).Children), (fun _ _ -> invalidOp "ITree rebuilds from its instance"), byIndex)
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
                (fun _ children ->
                    let l = Activator.CreateInstance t :?> IList
                    children |> Array.iter (l.Add >> ignore)
                    box l),
                byIndex
            )
        elif FSharpType.IsTuple t then
            let reader = FSharpValue.PreComputeTupleReader t
            let ctor = FSharpValue.PreComputeTupleConstructor t
            NodeCodec((fun v -> 0, reader v), (fun _ c -> ctor c), byIndex)
        elif FSharpType.IsRecord(t, true) then
            let reader = FSharpValue.PreComputeRecordReader(t, true)
            let ctor = FSharpValue.PreComputeRecordConstructor(t, true)
            let names = FSharpType.GetRecordFields(t, true) |> Array.map (fun f -> f.Name)
            NodeCodec((fun v -> 0, reader v), (fun _ c -> ctor c), byName names)
        elif FSharpType.IsUnion(t, true) then
            let tagReader = FSharpValue.PreComputeUnionTagReader(t, true)
            let cases = FSharpType.GetUnionCases(t, true)

            let readers =
                cases |> Array.map (fun c -> FSharpValue.PreComputeUnionReader(c, true))

            let ctors =
                cases |> Array.map (fun c -> FSharpValue.PreComputeUnionConstructor(c, true))

            // Key paths: the case name (not for an option's Some, whose value stands where the
            // option does, nor in a union marked NoCaseNamesInKeyPath), then the field name if the
            // case has several fields (one field needs no name to be told apart).
            let generic = if t.IsGenericType then t.GetGenericTypeDefinition() else t

            let caseNames =
                not (generic = typedefof<option<_>> || generic = typedefof<voption<_>>)
                && not (t.IsDefined(typeof<NoCaseNamesInKeyPathAttribute>, true))

            let keys =
                cases
                |> Array.map (fun c ->
                    let fields = c.GetFields()
                    let case = if caseNames then [ PathKey.Field c.Name ] else []

                    fields
                    |> Array.map (fun f ->
                        if fields.Length > 1 then
                            case @ [ PathKey.Field f.Name ]
                        else
                            case))

            NodeCodec(
                (fun v ->
                    let tag = tagReader v
                    tag, readers[tag]v),
                (fun tag c -> ctors[tag]c),
                fun tag i -> keys[tag][i]
            )
        else
            objectCodec t

    /// The path `at` (innermost key first) extended by `keys` (outermost first); nothing is built
    /// when no paths are collected.
    let private descend (paths: ResizeArray<KeyPath>) (at: PathKey list) (keys: PathKey list) =
        if isNull paths then
            at
        else
            List.fold (fun acc k -> k :: acc) at keys

    /// Appends the leaves of `value` (of static type `t`) to `leaves` and returns its structure.
    /// When `paths` is not null, also appends the key path of each leaf; `at` is the path to
    /// `value`, innermost key first (extended by consing while descending, reversed at a leaf).
    let rec private flattenInto
        (t: Type)
        (value: obj)
        (leaves: ResizeArray<Tensor>)
        (paths: ResizeArray<KeyPath>)
        (at: PathKey list)
        : TreeDef =
        // The runtime type decides (a field typed obj or an interface may hold any pytree).
        let t = if isNull value then t else value.GetType()

        match value with
        | :? Tensor as x ->
            leaves.Add x

            if not (isNull paths) then
                paths.Add(KeyPath(List.rev at))

            Leaf
        | null -> Static null
        | :? ITree as tree ->
            let children = tree.Children

            let keyOf: int -> PathKey list =
                match tree with
                | :? IKeyedTree as keyed when not (isNull paths) ->
                    let keys = keyed.ChildKeys

                    if isNull keys || keys.Length <> children.Length then
                        invalidArg
                            "tree"
                            $"Tree: %s{t.FullName} (IKeyedTree) has %d{children.Length} children but %d{if isNull keys then 0 else keys.Length} ChildKeys; give one key path per child"

                    fun i -> keys[i].Keys
                | _ -> fun i -> [ PathKey.Index i ]

            let defs =
                children
                |> Array.mapi (fun i c -> flattenInto typeof<obj> c leaves paths (descend paths at (keyOf i)))

            Node(t, 0, defs, (fun c -> tree.Rebuild c))
        | _ when t.IsGenericType && t.GetGenericTypeDefinition() = typedefof<Map<_, _>> ->
            let _, _, tupleType, ofArray = mapCodec t

            keyedNode t value leaves paths at (fun keys children ->
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

            keyedNode t value leaves paths at (fun keys children ->
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
            | NodeCodec(children, rebuild, keys) ->
                let tag, cs = children value

                let defs =
                    cs
                    |> Array.mapi (fun i c -> flattenInto typeof<obj> c leaves paths (descend paths at (keys tag i)))

                Node(t, tag, defs, rebuild tag)

    /// A keyed container (Map, Dictionary): the keys are part of the structure (static children
    /// first), the values are flattened; `rebuild keys values` makes a new container.
    /// In key paths a value is known by its key.
    and private keyedNode
        (t: Type)
        (value: obj)
        (leaves: ResizeArray<Tensor>)
        (paths: ResizeArray<KeyPath>)
        (at: PathKey list)
        (rebuild: obj[] -> obj[] -> obj)
        : TreeDef =
        let keyProp, valueProp, _, _ = mapCodec t
        let pairs = elements value
        let keys = pairs |> Array.map (fun kv -> keyProp.GetValue kv)

        let defs =
            pairs
            |> Array.mapi (fun i kv ->
                flattenInto typeof<obj> (valueProp.GetValue kv) leaves paths (descend paths at [ PathKey.Key keys[i] ]))

        Node(t, 0, Array.append (keys |> Array.map Static) defs, (fun c -> rebuild keys c[keys.Length ..]))

    /// The leaves of a pytree (depth-first, in field/element order) and its structure.
    let flatten (tree: 'T) : Tensor[] * TreeDef =
        let leaves = ResizeArray()
        let def = flattenInto typeof<'T> (box tree) leaves null []
        leaves.ToArray(), def

    /// flatten with the key path of every leaf, in the same order, without checking that the paths
    /// are distinct (for the optimizers, whose masks and labels are per leaf whatever the names).
    let internal flattenWithPathUnchecked (tree: 'T) : KeyPath[] * Tensor[] * TreeDef =
        let leaves, paths = ResizeArray(), ResizeArray()
        let def = flattenInto typeof<'T> (box tree) leaves paths []
        paths.ToArray(), leaves.ToArray(), def

    /// The leaves of a pytree with their key paths (JAX's tree_flatten_with_path), in the order of
    /// `flatten`, and its structure. The paths' names (`KeyPath.toName`) are distinct: two map keys
    /// with the same string form (or IKeyedTree keys that coincide) are an ArgumentException naming
    /// the path.
    let flattenWithPath (tree: 'T) : (KeyPath * Tensor)[] * TreeDef =
        let paths, leaves, def = flattenWithPathUnchecked tree
        let seen = Dictionary<string, KeyPath>()

        for p in paths do
            let name = p.Name

            match seen.TryGetValue name with
            | true, first ->
                invalidArg
                    "tree"
                    $"Tree.flattenWithPath: two leaves have the key path '%s{name}' (%O{first} and %O{p}): map keys need distinct string forms, IKeyedTree children distinct keys"
            | _ -> seen[name] <- p

        Array.zip paths leaves, def

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

    /// The tensor leaves of a pytree with their key paths, in the order of `leaves`.
    let leavesWithPath (tree: 'T) : (KeyPath * Tensor)[] = fst (flattenWithPath tree)

    /// The same structure with f applied to every leaf.
    let map (f: Tensor -> Tensor) (tree: 'T) : 'T =
        let leaves, def = flatten tree
        unflatten def (Array.map f leaves)

    /// The same structure with `f path leaf` applied to every leaf.
    let mapWithPath (f: KeyPath -> Tensor -> Tensor) (tree: 'T) : 'T =
        let pairs, def = flattenWithPath tree
        unflatten def (pairs |> Array.map (fun (p, x) -> f p x))

    /// Combines two trees of the same structure leaf by leaf.
    let map2 (f: Tensor -> Tensor -> Tensor) (a: 'T) (b: 'T) : 'T =
        let la, da = flatten a
        let lb, db = flatten b

        if da <> db then
            invalidArg "b" $"Tree.map2: the trees have different structures: %O{da} and %O{db}"

        unflatten da (Array.map2 f la lb)

using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>What a node of a <see cref="NetworkGraph"/> is.</summary>
public enum GraphNodeKind
{
    /// <summary>A source of external input (<see cref="NetworkGraph.Input(string, int)"/>).</summary>
    Input,

    /// <summary>Neurons (<see cref="NetworkGraph.Population(string, int, PopulationNeuron)"/>).</summary>
    Population,

    /// <summary>Synapses from one node to another (<see cref="NetworkGraph.Connect"/>, <see cref="NetworkGraph.Projection"/>).</summary>
    Projection,

    /// <summary>A transform of its input: an identity port such as NIR's <c>Output</c>, a scale, a
    /// threshold, a flatten or a per-neuron delay (<see cref="NetworkGraph.Transform"/>, <see cref="NetworkGraph.Output"/>).</summary>
    Transform,
}

/// <summary>A node of a <see cref="NetworkGraph"/>.</summary>
/// <param name="Name">The node's name.</param>
/// <param name="Kind">What it is.</param>
public sealed record GraphNode(string Name, GraphNodeKind Kind);

/// <summary>A directed edge of a <see cref="NetworkGraph"/>: the target sums what its incoming edges bring.</summary>
/// <param name="Source">The sending node.</param>
/// <param name="Target">The receiving node.</param>
public sealed record GraphEdge(string Source, string Target);

/// <summary>
/// A network as data — named sources, populations and projections joined by edges — built fluently
/// and immutably (each call returns a new graph), initialised to <see cref="GraphParameters"/> and
/// run time-stepped with observables of every recorded node and a final state:
/// <code>
/// var g = NetworkGraph.Create()
///     .Input("x", 5)
///     .Population("hidden", 100, Neurons.Lif(new LifParameters { Dt = 0.5e-3 }).WithInit("tauMem", Inits.Uniform(5e-3, 20e-3)))
///     .Population("out", 3, Neurons.Li(new LiParameters { Dt = 0.5e-3 }))
///     .Connect("x", "hidden", Projections.Dense(Inits.Normal(scale: 6)))
///     .Connect("hidden", "out", Projections.Dense(Inits.Normal()).WithBias(Inits.Zeros));
/// var p = g.Init(RandomKey.FromSeed(0));                // p["hidden"]["tauMem"], p["x->hidden"]["weight"]
/// var r = g.Run(p, 60, 0.5e-3, new Dictionary&lt;string, Tensor&gt; { ["x"] = spikes });   // r["out"].Membrane
/// </code>
/// The C# face of the core's <c>Graph</c> module (no logic of its own: the same graph gives the same
/// numbers as in F#). Named <c>NetworkGraph</c> because <see cref="Network"/> is taken by the
/// stax-style layers (a chain of functions, still the sugar for feed-forward stacks), and because a
/// <c>Graph</c> here would clash with the core's <c>SnnFunc.Graph</c> under <c>using SnnFunc;</c>.
/// A graph can do what a chain cannot: recurrence within and between populations, several inputs
/// and readouts, delays, and observables of hidden populations for losses and regularisers.
/// </summary>
/// <remarks>
/// Rules (checked by <see cref="Validate"/>, <see cref="Init"/> and <see cref="Run"/>, with errors that
/// name the node): names are unique and not blank; sources only emit; projections take any other
/// node (several inputs of one shape are summed) and feed populations (of one shape), or any node once
/// their output shape is declared (<see cref="SynapticProjection.WithOutShape"/>); a transform takes
/// inputs of one shape and has that shape (a flatten merges its axes); a population receives signals
/// of its own shape; a cycle passes through a population, whose output reaches the nodes it feeds
/// within the cycle one step later. Errors are the core's
/// <see cref="ArgumentException"/>s with the core's messages.
/// </remarks>
public sealed class NetworkGraph
{
    internal NetworkGraph(Graph inner) => Inner = inner;

    internal Graph Inner { get; }

    /// <summary>The graph without nodes.</summary>
    public static NetworkGraph Empty { get; } = new(GraphModule.empty);

    /// <summary>The graph without nodes, to build on (the same as <see cref="Empty"/>).</summary>
    /// <returns>The empty graph.</returns>
    public static NetworkGraph Create() => Empty;

    // Building ----------------------------------------------------------------------------------

    /// <summary>Adds a source of <paramref name="size"/> features: an external input, given to
    /// <see cref="Run"/> as [T, batch..., size].</summary>
    /// <param name="name">A new node name.</param>
    /// <param name="size">The number of features.</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">The name is blank or taken, or the size is not positive.</exception>
    public NetworkGraph Input(string name, int size) => new(GraphModule.input(name, size, Inner));

    /// <summary>Adds a source of the given feature shape (e.g. [channels, height, width]).</summary>
    /// <param name="name">A new node name.</param>
    /// <param name="shape">The feature shape (positive dimensions).</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">The name is blank or taken, or the shape is empty or not positive.</exception>
    public NetworkGraph Input(string name, int[] shape) => new(GraphModule.inputShaped(name, shape, Inner));

    /// <summary>Adds a population of <paramref name="size"/> neurons.</summary>
    /// <param name="name">A new node name.</param>
    /// <param name="size">The number of neurons.</param>
    /// <param name="neuron">The neuron (<see cref="Neurons.Lif"/>, <see cref="Neurons.Li"/> ...).</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">The name is blank or taken, or the size is not positive.</exception>
    public NetworkGraph Population(string name, int size, PopulationNeuron neuron)
    {
        ArgumentNullException.ThrowIfNull(neuron);
        return new(GraphModule.population(name, size, neuron.Inner, Inner));
    }

    /// <summary>Adds a population of neurons of the given shape.</summary>
    /// <param name="name">A new node name.</param>
    /// <param name="shape">The shape (positive dimensions).</param>
    /// <param name="neuron">The neuron.</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">The name is blank or taken, or the shape is empty or not positive.</exception>
    public NetworkGraph Population(string name, int[] shape, PopulationNeuron neuron)
    {
        ArgumentNullException.ThrowIfNull(neuron);
        return new(GraphModule.populationShaped(name, shape, neuron.Inner, Inner));
    }

    /// <summary>Connects <paramref name="source"/> to <paramref name="target"/> through a new
    /// projection node. A population may connect to itself (recurrence).</summary>
    /// <param name="source">An existing source or population.</param>
    /// <param name="target">An existing population.</param>
    /// <param name="projection">The projection (<see cref="Projections.Dense"/>, <see cref="Projections.Sparse"/>).</param>
    /// <param name="name">The projection node's name, under which its parameters are found; null for
    /// <c>"source->target"</c> (the core's <c>Graph.connect</c>; with a name, <c>Graph.connectNamed</c>).</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">A node does not exist, or the projection's name is taken.</exception>
    public NetworkGraph Connect(string source, string target, SynapticProjection projection, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(projection);
        return name is null
            ? new(GraphModule.connect(source, target, projection.Inner, Inner))
            : new(GraphModule.connectNamed(name, source, target, projection.Inner, Inner));
    }

    /// <summary>Adds a projection node without edges; wire it with <see cref="Edge"/> — for a projection
    /// that sums several inputs of one shape or feeds several populations (<see cref="Connect"/> covers
    /// one input and one target).</summary>
    /// <param name="name">A new node name.</param>
    /// <param name="projection">The projection.</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">The name is blank or taken.</exception>
    public NetworkGraph Projection(string name, SynapticProjection projection)
    {
        ArgumentNullException.ThrowIfNull(projection);
        return new(GraphModule.addNode(name, Node.NewSynapses(projection.Inner), Inner));
    }

    /// <summary>Adds a transform node without edges (the core's <c>Graph.transform</c>); wire it with
    /// <see cref="Edge"/>. Its shape follows from its input's (a flatten merges axes), and a
    /// projection that feeds it must declare its output shape (<see cref="SynapticProjection.WithOutShape"/>).</summary>
    /// <param name="name">A new node name; the transform's parameter, if any, is found under it.</param>
    /// <param name="transform">The transform (<see cref="GraphTransforms"/>).</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">The name is blank or taken.</exception>
    public NetworkGraph Transform(string name, GraphTransform transform)
    {
        ArgumentNullException.ThrowIfNull(transform);
        return new(GraphModule.transform(name, transform.Inner, Inner));
    }

    /// <summary>Adds an output port <paramref name="name"/> that passes on what <paramref name="from"/>
    /// emits: an <see cref="GraphTransforms.Identity"/> node and the edge from <paramref name="from"/> to
    /// it. NIR graphs end in <c>Output</c> nodes, which is what these become when the graph is written
    /// with <see cref="NirFiles.Write"/>; a run records it like any node (its <c>Output</c>).</summary>
    /// <param name="name">A new node name.</param>
    /// <param name="from">The existing node whose signal the port passes on.</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">The name is blank or taken, or <paramref name="from"/> does not exist.</exception>
    public NetworkGraph Output(string name, string from) =>
        new(GraphModule.edge(from, name, GraphModule.transform(name, SnnFunc.Transform.Identity, Inner)));

    /// <summary>Adds a directed edge between existing nodes.</summary>
    /// <param name="source">The sending node.</param>
    /// <param name="target">The receiving node.</param>
    /// <returns>The new graph.</returns>
    /// <exception cref="ArgumentException">A node does not exist.</exception>
    public NetworkGraph Edge(string source, string target) => new(GraphModule.edge(source, target, Inner));

    // Inspecting ----------------------------------------------------------------------------------

    /// <summary>The nodes in the order they were added.</summary>
    public IReadOnlyList<GraphNode> Nodes =>
        Inner.Nodes.Select(n => new GraphNode(n.Item1, KindOf(n.Item2))).ToArray();

    private static GraphNodeKind KindOf(Node node) => node switch
    {
        Node.Source => GraphNodeKind.Input,
        Node.Population => GraphNodeKind.Population,
        Node.Synapses => GraphNodeKind.Projection,
        Node.Op => GraphNodeKind.Transform,
        _ => throw new InvalidOperationException($"NetworkGraph: a node of an unknown kind ({node})"),
    };

    /// <summary>The edges in the order they were added.</summary>
    public IReadOnlyList<GraphEdge> Edges => Inner.Edges.Select(e => new GraphEdge(e.Item1, e.Item2)).ToArray();

    /// <summary>Checks the graph (names, edges, shapes, cycles).</summary>
    /// <returns>This graph.</returns>
    /// <exception cref="ArgumentException">The graph breaks a rule; the message names the node or edge at fault.</exception>
    public NetworkGraph Validate()
    {
        GraphModule.validate(Inner);
        return this;
    }

    /// <summary>The per-sample shape of a node's output (a projection's is its targets').</summary>
    /// <param name="node">The node's name.</param>
    /// <returns>The shape.</returns>
    /// <exception cref="ArgumentException">There is no such node, or the graph is invalid.</exception>
    public IReadOnlyList<int> ShapeOf(string node) => GraphModule.shapeOf(Inner, node);

    // Initialising and running ------------------------------------------------------------------

    /// <summary>Initial parameters of every node: neuron parameters at their values (rank 0), or drawn
    /// per neuron where <see cref="PopulationNeuron.WithInit"/> asks; weights [in, out] and biases from the
    /// projections' initialisers; learnable delays at their initial values. Each node draws from its
    /// own key, folded in from <paramref name="key"/> by the node's position, so adding a node does
    /// not change the others' draws.</summary>
    /// <param name="key">The random key.</param>
    /// <param name="dtype">The parameters' element type (Float32 by default); the inputs of
    /// <see cref="Run"/> should have the same.</param>
    /// <returns>The parameters, by node then by name.</returns>
    /// <exception cref="ArgumentException">The graph is invalid, or a drawn neuron parameter is out of
    /// range (the message names the population and the neuron).</exception>
    public GraphParameters Init(RandomKey key, DType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new(GraphModule.initAs(DTypeOr32(dtype), key.Key, Inner));
    }

    /// <summary>Runs the graph time-stepped for <paramref name="steps"/> steps. Nodes outside cycles run
    /// over the whole time axis at once (fused kernels for LIF and LI populations); each cycle runs as
    /// one scan. Differentiable in the parameters, the inputs and the initial state.</summary>
    /// <param name="parameters">The parameters (from <see cref="Init"/>, trained, or built by hand).</param>
    /// <param name="steps">The number of time steps T (&gt;= 0).</param>
    /// <param name="dt">The step length in seconds; every population's <c>Dt</c> must equal it (checked by the core);
    /// passed on to the core's <c>RunConfig.steps</c>.</param>
    /// <param name="inputs">One tensor per source, by name, each [T, batch..., source shape]; their
    /// batch axes must agree, and their dtype is the run's.</param>
    /// <param name="record">The nodes whose observables are kept; null for every population and every node that feeds no other (such as an Output).</param>
    /// <param name="initial">The state to start from (a previous run's <see cref="GraphRunResult.Final"/>);
    /// null for zeros.</param>
    /// <returns>The observables of the recorded nodes and the final state.</returns>
    /// <exception cref="ArgumentException">The graph is invalid, an input is missing, extra or of the wrong
    /// shape, a parameter or a recorded node is missing, or the initial state has the wrong shape;
    /// the message names the node.</exception>
    public GraphRunResult Run(
        GraphParameters parameters,
        int steps,
        double dt,
        IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyList<string>? record = null,
        GraphState? initial = null)
        => Call(GraphModule.run, parameters, steps, dt, inputs, record, initial);

    /// <summary>Runs the graph for inference: the same observables and final state as <see cref="Run"/>
    /// for the nodes in <paramref name="record"/> (name only those needed, such as the readout). A
    /// feed-forward graph of dense or masked projections without delays into LIF (no refractory period)
    /// and LI populations, with no initial state, runs one step of the whole graph at a time per sample,
    /// without the [T, batch, neurons] intermediates of <see cref="Run"/>: several times faster, the
    /// same numbers (to rounding where <see cref="Run"/> multiplies densely). Other graphs, and values
    /// traced by a transform, run <see cref="Run"/>.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <param name="steps">The number of time steps T (&gt;= 0).</param>
    /// <param name="dt">The step length in seconds, as for <see cref="Run"/>.</param>
    /// <param name="inputs">One tensor per source, by name, each [T, batch..., source shape].</param>
    /// <param name="record">The nodes whose observables are kept; null for every population and every node that feeds no other.</param>
    /// <param name="initial">The state to start from; null for zeros.</param>
    /// <returns>The observables of the recorded nodes and the final state.</returns>
    /// <exception cref="ArgumentException">As for <see cref="Run"/>.</exception>
    public GraphRunResult Infer(
        GraphParameters parameters,
        int steps,
        double dt,
        IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyList<string>? record = null,
        GraphState? initial = null)
        => Call(GraphModule.infer, parameters, steps, dt, inputs, record, initial);

    /// Run and Infer: the arguments checked and converted to the core's, then <paramref name="run"/>.
    private GraphRunResult Call(
        Func<Graph, Microsoft.FSharp.Collections.FSharpMap<string, Microsoft.FSharp.Collections.FSharpMap<string, Tensor>>, RunConfig,
            Microsoft.FSharp.Collections.FSharpMap<string, Tensor>, RunResult> run,
        GraphParameters parameters,
        int steps,
        double dt,
        IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyList<string>? record,
        GraphState? initial)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(inputs);
        var config = RunConfigModule.steps(steps, dt);
        if (record is not null) config = RunConfigModule.recording(List(record), config);
        if (initial is not null) config = RunConfigModule.from(initial.Inner, config);
        var xs = Microsoft.FSharp.Collections.MapModule.OfSeq(inputs.Select(kv => Tuple.Create(kv.Key, kv.Value)));
        return new(run(Inner, parameters.Inner, config, xs));
    }

    /// <inheritdoc/>
    public override string ToString() =>
        "NetworkGraph [" + string.Join("; ", Inner.Nodes.Select(n => n.Item2 switch
        {
            Node.Source s => $"{n.Item1}: input[{string.Join(", ", s.shape)}]",
            Node.Population p => $"{n.Item1}: {new PopulationNeuron(p.neuron)}[{string.Join(", ", p.shape)}]",
            Node.Synapses y => $"{n.Item1}: {new SynapticProjection(y.Item)}",
            Node.Op o => $"{n.Item1}: {new GraphTransform(o.Item1)}" + (o.shape is null ? "" : $"[{string.Join(", ", o.shape.Value)}]"),
            _ => n.Item1,
        })) + "] edges [" + string.Join("; ", Inner.Edges.Select(e => $"{e.Item1} -> {e.Item2}")) + "]";
}

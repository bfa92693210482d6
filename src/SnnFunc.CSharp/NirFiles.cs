using System.Collections.ObjectModel;

namespace SnnFunc.CSharp;

// NIR files (the Neuromorphic Intermediate Representation) as NetworkGraphs: the C# face of the
// core's Nir module. Named NirFiles, not Nir, so that it does not clash with the core's SnnFunc.Nir
// under `using SnnFunc;`.

/// <summary>
/// How the times of a NIR file become seconds and steps — which NIR itself does not say: its
/// documentation says milliseconds (as jaxsnn writes), Norse and snnTorch write seconds, Spyx writes
/// time steps. Reading and writing therefore take them explicitly: <see cref="TimeUnit"/> (seconds per
/// unit of the file's time constants and delays), <see cref="Dt"/> (the simulation step in seconds;
/// NIR's equations are discretised by explicit Euler with it) and <see cref="Surrogate"/> (the
/// surrogate derivative given to the spiking neurons and thresholds read, since NIR has none).
/// Immutable; the C# face of the core's <c>NirOptions</c>.
/// </summary>
public sealed class NirConventions
{
    internal NirConventions(NirOptions inner) => Inner = inner;

    /// <summary>Conventions of any time unit, e.g. microseconds (<c>new NirConventions(1e-6, 1e-4)</c>).</summary>
    /// <param name="timeUnit">Seconds per unit of the file's times (positive and finite).</param>
    /// <param name="dt">The simulation step in seconds (positive and finite).</param>
    /// <param name="surrogate">The surrogate derivative of imported spiking neurons and thresholds; null
    /// for SuperSpike(100), that of the other conventions.</param>
    /// <exception cref="ArgumentException">The time unit or the step is not positive and finite.</exception>
    public NirConventions(double timeUnit, double dt, SpikeSurrogate? surrogate = null)
    {
        Check(timeUnit, nameof(timeUnit), "time unit");
        Check(dt, nameof(dt), "step");
        Inner = new NirOptions(timeUnit, dt, surrogate?.Fn ?? NirOptionsModule.defaults.Surrogate);
    }

    internal NirOptions Inner { get; }

    /// <summary>Milliseconds, NIR's documented unit (and jaxsnn's), simulated with steps of
    /// <paramref name="dt"/> seconds.</summary>
    /// <param name="dt">The simulation step in seconds (positive and finite).</param>
    /// <returns>The conventions.</returns>
    /// <exception cref="ArgumentException">The step is not positive and finite.</exception>
    public static NirConventions Milliseconds(double dt) => new(NirOptionsModule.milliseconds(Checked(dt)));

    /// <summary>Seconds, as Norse writes (its default step is 1 ms) and snnTorch (with dt = 1e-4 s).</summary>
    /// <param name="dt">The simulation step in seconds (positive and finite).</param>
    /// <returns>The conventions.</returns>
    /// <exception cref="ArgumentException">The step is not positive and finite.</exception>
    public static NirConventions Seconds(double dt) => new(NirOptionsModule.seconds(Checked(dt)));

    /// <summary>Time steps of <paramref name="dt"/> seconds, as Spyx writes: a time constant of 10 in
    /// the file is 10 steps.</summary>
    /// <param name="dt">The length of one step in seconds (positive and finite).</param>
    /// <returns>The conventions.</returns>
    /// <exception cref="ArgumentException">The step is not positive and finite.</exception>
    public static NirConventions Steps(double dt) => new(NirOptionsModule.steps(Checked(dt)));

    /// <summary>Milliseconds with 1 ms steps and SuperSpike(100): what <see cref="NirFiles.Read"/>
    /// uses for a file that does not record its conventions (the core's <c>NirOptions.defaults</c>).</summary>
    public static NirConventions Default { get; } = new(NirOptionsModule.defaults);

    /// <summary>Seconds per unit of the file's times (time constants, delays): 1e-3 for milliseconds,
    /// 1 for seconds, <see cref="Dt"/> for steps.</summary>
    public double TimeUnit => Inner.TimeUnit;

    /// <summary>The simulation step in seconds; the graph read runs with it (<see cref="NetworkGraph.Run"/>'s <c>dt</c>).</summary>
    public double Dt => Inner.Dt;

    /// <summary>The surrogate derivative given to imported spiking neurons and thresholds.</summary>
    public SpikeSurrogate Surrogate => new(Inner.Surrogate);

    /// <summary>These conventions with another surrogate derivative.</summary>
    /// <param name="surrogate">The surrogate.</param>
    /// <returns>The new conventions (these are unchanged).</returns>
    public NirConventions WithSurrogate(SpikeSurrogate surrogate)
    {
        ArgumentNullException.ThrowIfNull(surrogate);
        return new(new NirOptions(Inner.TimeUnit, Inner.Dt, surrogate.Fn));
    }

    /// <inheritdoc/>
    public override string ToString() => $"NirConventions(time unit {TimeUnit:g} s, dt {Dt:g} s, {Inner.Surrogate.Name})";

    // The core's NirOptions constructors take any number; a zero or negative step would only fail
    // later, in a population or delay read with it.
    private static void Check(double value, string parameter, string what)
    {
        if (!(value > 0) || double.IsInfinity(value))
            throw new ArgumentException($"NirConventions: the {what} must be positive and finite, got {value:g}", parameter);
    }

    private static double Checked(double dt)
    {
        Check(dt, nameof(dt), "step");
        return dt;
    }
}

/// <summary>
/// A NIR file read as a graph (<see cref="NirFiles.Read"/>): the <see cref="Graph"/> with the file's
/// node names, primitives and metadata, its <see cref="Parameters"/> (the file's tensors in their
/// dtypes and time unit, weights transposed to [in, out]), the <see cref="Conventions"/> it was read
/// with and the reader's <see cref="Warnings"/> about them. Run it with
/// <c>network.Graph.Run(network.Parameters, steps, network.Conventions.Dt, inputs)</c>, the inputs by
/// the names of <see cref="Inputs"/>, the results under those of <see cref="Outputs"/>.
/// </summary>
public sealed class NirNetwork
{
    internal NirNetwork(Graph graph, Microsoft.FSharp.Collections.FSharpMap<string, Microsoft.FSharp.Collections.FSharpMap<string, Tensor>> parameters)
    {
        Graph = new NetworkGraph(graph);
        Parameters = new GraphParameters(parameters);
        Conventions = new NirConventions(Nir.optionsOf(NirOptionsModule.defaults, graph));
        Warnings = new ReadOnlyCollection<string>(Nir.warnings(graph).ToArray());
        Inputs = new ReadOnlyCollection<string>(graph.Nodes.Where(n => n.Item2.IsSource).Select(n => n.Item1).ToArray());
        var senders = graph.Edges.Select(e => e.Item1).ToHashSet(StringComparer.Ordinal);
        Outputs = new ReadOnlyCollection<string>(graph.Nodes.Select(n => n.Item1).Where(n => !senders.Contains(n)).ToArray());
    }

    /// <summary>The graph: NIR's <c>Input</c> nodes of the top graph as sources, <c>Output</c> nodes
    /// and nested graphs' ports as identity transforms, <c>Affine</c>/<c>Linear</c> as projections,
    /// neurons as populations of NIR's models, nested graphs as nodes named <c>outer/inner</c>.</summary>
    public NetworkGraph Graph { get; }

    /// <summary>The parameters, by node then by the file's field names (<c>p["lif1"]["tau_mem"]</c>,
    /// <c>p["fc1"]["weight"]</c> [in, out]).</summary>
    public GraphParameters Parameters { get; }

    /// <summary>The conventions the file was read with: those given to <see cref="NirFiles.Read"/>, or
    /// those the file records (SnnFunc records them), or <see cref="NirConventions.Default"/>. Its
    /// <see cref="NirConventions.Dt"/> is the step to run the graph with.</summary>
    public NirConventions Conventions { get; }

    /// <summary>The reader's doubts about the conventions, e.g. that every time constant is below 0.1
    /// in a file read as milliseconds, so that it was probably written in seconds (Norse, snnTorch);
    /// empty when there are none.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The names of the graph's sources (NIR's top-level <c>Input</c> nodes), in node order: the keys
    /// of the inputs of a run.</summary>
    public IReadOnlyList<string> Inputs { get; }

    /// <summary>The names of the nodes without an outgoing edge (NIR's <c>Output</c> nodes, in a
    /// well-formed file), in node order.</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <inheritdoc/>
    public override string ToString() =>
        $"NirNetwork(inputs: {string.Join(", ", Inputs)}; outputs: {string.Join(", ", Outputs)}; {Conventions})";
}

/// <summary>
/// Reading and writing NIR files (the Neuromorphic Intermediate Representation, the HDF5 files of
/// the reference <c>nir.read</c>/<c>nir.write</c>) as <see cref="NetworkGraph"/>s:
/// <code>
/// var net = NirFiles.Read("model.nir");                 // or NirFiles.Read(path, NirConventions.Seconds(1e-4))
/// var r = net.Graph.Run(net.Parameters, 100, net.Conventions.Dt, new Dictionary&lt;string, Tensor&gt; { [net.Inputs[0]] = x });
/// NirFiles.Write("mine.nir", graph.Output("output", "out"), parameters);
/// </code>
/// NIR's neurons (CubaLIF, LIF, CubaLI, LI, IF, I) become populations that keep the file's field
/// names and time unit and run by explicit Euler, NIR's reference discretisation; a graph read and
/// written back gives the same document. SnnFunc's own LIF, LI and IF populations are written as the
/// NIR primitives with the same dynamics; what NIR cannot express (adaptive neurons, a reset by
/// subtraction, refractory periods, delayed projections) is an <see cref="ArgumentException"/>
/// naming the node. The C# face of the core's <c>Nir</c> module; errors are the core's, with its
/// messages.
/// </summary>
public static class NirFiles
{
    /// <summary>Reads a NIR file as a graph.</summary>
    /// <param name="path">The file.</param>
    /// <param name="conventions">The time unit and step to read it in; null for those the file records
    /// in its metadata (SnnFunc's writer records them), else <see cref="NirConventions.Default"/>
    /// (milliseconds, 1 ms steps) — then check <see cref="NirNetwork.Warnings"/>.</param>
    /// <returns>The graph, its parameters, the conventions and the warnings.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DirectoryNotFoundException">Its folder does not exist.</exception>
    /// <exception cref="InvalidDataException">It is not an HDF5 file, or not a valid NIR graph; the message
    /// names the file, the HDF5 path and the field.</exception>
    /// <exception cref="ArgumentException">The path is blank, or the file's graph has no SnnFunc form
    /// (convolutions and pooling are not mapped yet; a nested graph without its ports); the message
    /// names the node.</exception>
    public static NirNetwork Read(string path, NirConventions? conventions = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var read = conventions is null ? Nir.read(path) : Nir.readWith(conventions.Inner, path);
        return new NirNetwork(read.Item1, read.Item2);
    }

    /// <summary>Writes a graph and its parameters as a NIR file, atomically (an existing file is
    /// replaced only once the new one is complete). Nodes named <c>outer/inner</c> become nested
    /// graphs, nodes read from NIR are written as they were read, SnnFunc's own neurons as the NIR
    /// primitives with the same dynamics; end the graph in output ports (<see cref="NetworkGraph.Output"/>),
    /// as NIR graphs do. For a graph of SnnFunc's own, the conventions used are recorded in the file's
    /// metadata (<c>time_unit</c>, <c>dt</c>), so that <see cref="Read"/> without conventions reads it
    /// back in them; a graph read from a NIR file is written back as the document it was, its metadata
    /// unchanged (a file that recorded no conventions still records none: read it back with the same
    /// conventions as before).</summary>
    /// <param name="path">The file.</param>
    /// <param name="graph">The graph.</param>
    /// <param name="parameters">Its parameters.</param>
    /// <param name="conventions">The time unit and step to write in; null for those the graph was read
    /// with, or for a graph of SnnFunc's own milliseconds and the step of its first population with one
    /// (1 ms without). The step of every LIF and LI population, and the time unit and step a NIR graph
    /// was read with, must be the conventions'.</param>
    /// <exception cref="ArgumentException">The path is blank, the graph is invalid, a parameter is
    /// missing, or a node has no NIR form (or another step or time unit than the conventions); the
    /// message names the node.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static void Write(string path, NetworkGraph graph, GraphParameters parameters, NirConventions? conventions = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(parameters);
        if (conventions is null) Nir.write(path, graph.Inner, parameters.Inner);
        else Nir.writeWith(conventions.Inner, path, graph.Inner, parameters.Inner);
    }
}

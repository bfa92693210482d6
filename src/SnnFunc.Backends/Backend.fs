/// The backend interface: what runs a whole graph's forward pass (the software model or the
/// BrainScaleS-2 emulator), what it declares it can do, and what it returns.
namespace SnnFunc.Backends

open SnnFunc

/// What a backend can run and observe; a graph outside these is rejected with the limit named.
type Capabilities =
    {
        /// A short human-readable name, e.g. "software" or "bss2-emulator".
        Name: string
        /// The neuron models a population may have.
        NeuronModels: string list
        /// Signed integer weight levels on each side of zero (63 for 6-bit weights), None when
        /// weights are real numbers.
        WeightLevels: int option
        /// The most neurons (circuits) a graph may use, None when unbounded.
        MaxNeurons: int option
        /// Synapses one neuron circuit can receive, None when unbounded.
        SynapsesPerNeuron: int option
        /// The readouts a run returns besides dense spikes: "membrane", "cadc", "madc", "events".
        Readouts: string list
        /// Whether two runs on the same inputs give the same numbers.
        Deterministic: bool
        /// Model seconds per second of the backend's own time (1000 on the chip).
        Acceleration: float
    }

/// The time a run took on the backend and the energy it used, per batch and per sample.
type Account =
    {
        Samples: int
        /// The backend's own (hardware) time for the whole run, in seconds.
        BackendSeconds: float
        /// Samples per second of backend time.
        SamplesPerSecond: float
        /// Energy per sample in joules, from the backend's power figure (NaN when unknown).
        JoulesPerSample: float
    }

    /// "hardware time 1.23 ms for 64 samples (52,000 samples/s), 3.8 µJ per sample".
    override a.ToString() =
        $"hardware time %.4g{a.BackendSeconds * 1e3} ms for %d{a.Samples} samples (%.0f{a.SamplesPerSecond} samples/s), %.3g{a.JoulesPerSample * 1e6} µJ per sample"

/// What a backend returns for one run.
type Observables =
    {
        /// Dense observables of the recorded nodes on the run's time grid, [T; batch...; shape]:
        /// spikes, and the membrane (on a chip, the CADC samples converted back to model units and
        /// interpolated onto the grid). Current is null where the backend cannot observe it.
        Dense: RunResult
        /// The spikes of each recorded spiking population as event buffers (times in model seconds).
        Events: Map<string, EventBuffer>
        /// Raw readouts the backend has besides (e.g. "cadc/hidden" [S; batch; N] in ADC codes and
        /// "madc" [M; batch] for the one fast-ADC trace); empty for the software backend.
        Raw: Map<string, Tensor>
        /// The times (model seconds) of the samples of each raw readout.
        RawTimes: Map<string, float[]>
        Account: Account option
    }

/// The forward pass of a whole graph on some substrate.
type IBackend =
    abstract Capabilities: Capabilities
    /// Runs `graph` with `parameters` on `inputs` (by source name, [T; batch...; shape]) for
    /// `config`'s steps, returning the observables of the recorded nodes.
    abstract Run: graph: Graph * parameters: GraphParams * inputs: Map<string, Tensor> * config: RunConfig -> Observables

/// The software model as a backend: Graph.run, exact and deterministic.
type SoftwareBackend(eventCapacity: int) =
    new() = SoftwareBackend(256)

    interface IBackend with
        member _.Capabilities =
            {
                Name = "software"
                NeuronModels = [ "LIF"; "LI"; "ALIF"; "AdEx"; "IF"; "NIR" ]
                WeightLevels = None
                MaxNeurons = None
                SynapsesPerNeuron = None
                Readouts = [ "membrane"; "current"; "events" ]
                Deterministic = true
                Acceleration = 1.0
            }

        member _.Run(graph, parameters, inputs, config) =
            let r = Graph.run graph parameters config inputs

            // Event buffers of concrete spikes only: under a transform the dense spikes are the
            // differentiable observable, and an event buffer of tracers has no use.
            let events =
                r.Observed
                |> Map.filter (fun _ o -> not (isNull o.Spikes) && o.Spikes.IsConcrete)
                |> Map.map (fun _ o -> EventBuffer.ofDense o.Spikes config.Dt eventCapacity)

            {
                Dense = r
                Events = events
                Raw = Map.empty
                RawTimes = Map.empty
                Account = None
            }

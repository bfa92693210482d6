/// The options, per-batch counts and results of the NeuroBench metrics (module NeuroBench).
namespace SnnFunc

/// Which aggregation rules the NeuroBench metrics follow where the reference harness (NeuroBench
/// 2.3.0, `shared/reference/neurobench.md`) is defective or ambiguous.
type NeuroBenchMode =
    /// The reference harness exactly: a projection's operations at one time step are all ACs when
    /// every value of the whole batch's input at that step is in {-1, 0, 1}, else all MACs (so one
    /// graded value in one sample turns the step's operations of every sample into MACs, and the
    /// split depends on how the data set is batched); accuracy and activation sparsity are computed
    /// per batch and combined as Σ_b value_b · B_b / DatasetSize.
    | Reference
    /// The AC/MAC test per sample and time step (independent of batch composition); accuracy is
    /// correct / samples processed and activation sparsity zeros / activations over the whole data
    /// set (DatasetSize is not used).
    | Corrected

/// Settings of the NeuroBench metrics.
type NeuroBenchOptions =
    {
        /// Reference (the harness's rules) or Corrected.
        Mode: NeuroBenchMode
        /// The harness's `len(dataloader.dataset)`: the divisor of the batch-weighted metrics
        /// (accuracy, activation sparsity) in Reference mode. None: the samples processed. A value
        /// above the samples processed scales those metrics down, as the harness does with
        /// `drop_last` or a subset sampler.
        DatasetSize: int option
        /// The populations whose outputs are activations (the harness's activation layers). None:
        /// every spiking population (an LI readout's output is a membrane potential, which the
        /// harness would not see as an activation either).
        Activations: string list option
        /// Event-driven runs: the time bin in seconds on which spikes are counted for activation
        /// sparsity. None: each population's own Dt (its Config).
        EventBin: float option
    }

/// Synaptic operations per sample, summed over time steps and projections (the harness's units).
type SynapticOperations =
    {
        /// Every weight and every input taken as non-zero (zero padding of a convolution excluded).
        Dense: float
        /// Effective operations (non-zero input times non-zero weight) in non-spiking calls.
        EffectiveMACs: float
        /// Effective operations in spiking calls (all input values in {-1, 0, 1}).
        EffectiveACs: float
    }

/// The counts of one batch (sums over its samples): what the metrics are computed from. Both AC/MAC
/// splits are kept, so that one measurement serves both modes.
type NeuroBenchBatch =
    {
        /// Samples in the batch (the harness's `data[0].size(0)`).
        Samples: int
        /// Dense operations.
        Dense: float
        /// Effective MACs under the reference rule (one test per time step for the whole batch).
        BatchMACs: float
        /// Effective ACs under the reference rule.
        BatchACs: float
        /// Effective MACs under the corrected rule (one test per sample and time step).
        SampleMACs: float
        /// Effective ACs under the corrected rule.
        SampleACs: float
        /// Membrane updates.
        MembraneUpdates: float
        /// Zero activations.
        ActivationZeros: float
        /// All activations.
        Activations: float
        /// Correctly classified samples (None until NeuroBench.withAccuracy adds them).
        Correct: int option
    }

/// The static metrics of a network (its parameters and buffers).
type NeuroBenchStatic =
    {
        /// Bytes of the parameters and buffers (the masks of sparse projections), each at its dtype's size.
        Footprint: int64
        /// Elements of every parameter tensor (weights, biases, neuron parameters, learnable delays).
        ParameterCount: int64
        /// Exact zeros among the projections' effective weights (biases excluded).
        ZeroWeights: int64
        /// All the projections' weights.
        Weights: int64
        /// ZeroWeights / Weights rounded to 4 decimals; None without any projection (the harness's 0/0).
        ConnectionSparsity: float option
    }

/// The NeuroBench metrics of a network over a data set.
type NeuroBenchResults =
    {
        /// The rules they were aggregated with.
        Mode: NeuroBenchMode
        /// Samples processed.
        Samples: int
        /// Batches processed.
        Batches: int
        /// Bytes of parameters and buffers.
        Footprint: int64
        ParameterCount: int64
        ConnectionSparsity: float option
        /// The fraction of zero activations.
        ActivationSparsity: float
        SynapticOperations: SynapticOperations
        /// Membrane updates per sample.
        MembraneUpdates: float
        /// None when no batch had predictions.
        ClassificationAccuracy: float option
    }

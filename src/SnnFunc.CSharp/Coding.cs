using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>Encoders: values [B, N] to time-major inputs [T, B, N] (spikes or currents). They prepare data.</summary>
public static class Encoders
{
    /// <summary>Linear latency (time-to-first-spike) coding: a value u in [0, 1] spikes once at
    /// u · tLate (or (1 − u) · tLate when inverted), rounded to the nearest step.</summary>
    /// <param name="x">Values [B, N] in [0, 1].</param>
    /// <param name="steps">The number of time steps T.</param>
    /// <param name="dt">The step length in seconds.</param>
    /// <param name="tLate">The spike time of the value 1, in seconds.</param>
    /// <param name="inverted">Large values spike early instead of late.</param>
    /// <returns>Spikes [T, B, N].</returns>
    public static Tensor Latency(Tensor x, int steps, double dt, double tLate, bool inverted = false) =>
        Encode.latency(steps, dt, tLate, inverted, x);

    /// <summary>Logarithmic latency coding (Cramer et al. 2022): a current x charging a leaky membrane
    /// reaches θ at t = τ ln(x / (x − θ)); values x ≤ θ never spike.</summary>
    /// <param name="x">Values [B, N].</param>
    /// <param name="steps">The number of time steps T.</param>
    /// <param name="dt">The step length in seconds.</param>
    /// <param name="tau">The membrane time constant τ in seconds.</param>
    /// <param name="theta">The threshold θ.</param>
    /// <returns>Spikes [T, B, N].</returns>
    public static Tensor LogLatency(Tensor x, int steps, double dt, double tau, double theta) =>
        Encode.logLatency(steps, dt, tau, theta, x);

    /// <summary>Poisson (rate) coding: at each step a spike with probability maxRate · u · dt.</summary>
    /// <param name="x">Values [B, N] in [0, 1].</param>
    /// <param name="key">The random key.</param>
    /// <param name="steps">The number of time steps T.</param>
    /// <param name="dt">The step length in seconds.</param>
    /// <param name="maxRate">The rate of the value 1, in Hz.</param>
    /// <returns>Spikes [T, B, N].</returns>
    public static Tensor Poisson(Tensor x, RandomKey key, int steps, double dt, double maxRate)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Encode.poisson(key.Key, steps, dt, maxRate, x);
    }

    /// <summary>Current injection: the values as a constant input at every step.</summary>
    /// <param name="x">Values [B, N].</param>
    /// <param name="steps">The number of time steps T.</param>
    /// <returns>Currents [T, B, N].</returns>
    public static Tensor Current(Tensor x, int steps) => Encode.current(steps, x);
}

/// <summary>Decoders: time-major outputs [T, B, N] to per-sample values [B, N].</summary>
public static class Decoders
{
    /// <summary>The largest value over time (for a membrane readout).</summary>
    /// <param name="v">Outputs [T, B, N].</param>
    /// <returns>[B, N].</returns>
    public static Tensor MaxOverTime(Tensor v) => Decode.maxOverTime(v);

    /// <summary>The number of spikes over time.</summary>
    /// <param name="z">Spikes [T, B, N].</param>
    /// <returns>[B, N].</returns>
    public static Tensor SpikeCount(Tensor z) => Decode.spikeCount(z);

    /// <summary>The mean over time.</summary>
    /// <param name="v">Outputs [T, B, N].</param>
    /// <returns>[B, N].</returns>
    public static Tensor MeanOverTime(Tensor v) => Decode.meanOverTime(v);

    /// <summary>The time of the first spike in seconds (T · dt for neurons that never spike); not differentiable.</summary>
    /// <param name="z">Spikes [T, B, N].</param>
    /// <param name="dt">The step length in seconds.</param>
    /// <returns>[B, N].</returns>
    public static Tensor FirstSpikeTime(Tensor z, double dt) => Decode.firstSpikeTime(dt, z);
}

/// <summary>Losses (differentiable, rank-0 tensors) and metrics.</summary>
public static class Losses
{
    /// <summary>Mean cross-entropy of logits [B, C] against integer labels.</summary>
    /// <param name="logits">Unnormalised scores [B, C].</param>
    /// <param name="labels">B labels in [0, C).</param>
    /// <returns>The loss.</returns>
    public static Tensor CrossEntropy(Tensor logits, IReadOnlyList<int> labels) => Loss.crossEntropy(logits, Labels(labels));

    /// <summary>Mean negative log-likelihood of integer labels under log-probabilities [B, C].</summary>
    /// <param name="logProbabilities">Log-probabilities [B, C].</param>
    /// <param name="labels">B labels in [0, C).</param>
    /// <returns>The loss.</returns>
    public static Tensor NegativeLogLikelihood(Tensor logProbabilities, IReadOnlyList<int> labels) =>
        Loss.nll(logProbabilities, Labels(labels));

    /// <summary>Mean squared error.</summary>
    /// <param name="prediction">The prediction.</param>
    /// <param name="target">The target (broadcastable to the prediction).</param>
    /// <returns>The loss.</returns>
    public static Tensor MeanSquaredError(Tensor prediction, Tensor target) => Loss.mse(prediction, target);

    /// <summary>Firing-rate regulariser: mean over neurons of (spikes per sample − target)² for spikes [T, B, N].</summary>
    /// <param name="spikes">Spikes [T, B, N].</param>
    /// <param name="target">The target number of spikes per sample and neuron.</param>
    /// <returns>The penalty.</returns>
    public static Tensor FiringRate(Tensor spikes, double target) => Loss.firingRate(target, spikes);

    /// <summary>Upper-bound firing-rate regulariser: mean of relu(spikes per neuron − limit)².</summary>
    /// <param name="spikes">Spikes [T, B, N].</param>
    /// <param name="limit">The number of spikes per sample above which a neuron is penalised.</param>
    /// <returns>The penalty.</returns>
    public static Tensor FiringRateAbove(Tensor spikes, double limit) => Loss.firingRateAbove(limit, spikes);

    /// <summary>The fraction of rows whose largest logit is at the label.</summary>
    /// <param name="logits">Scores [B, C].</param>
    /// <param name="labels">B labels.</param>
    /// <returns>The accuracy in [0, 1].</returns>
    public static double Accuracy(Tensor logits, IReadOnlyList<int> labels) => Loss.accuracy(logits, Labels(labels));
}

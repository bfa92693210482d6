using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>A surrogate derivative of the Heaviside spike function (see <see cref="Surrogates"/>).</summary>
public sealed class SpikeSurrogate
{
    internal SpikeSurrogate(SurrogateFn fn) => Fn = fn;

    internal SurrogateFn Fn { get; }

    /// <summary>The surrogate's name with its parameter, e.g. <c>superSpike(100)</c>.</summary>
    public string Name => Fn.Name;

    /// <summary>The pseudo-derivative dH/dx at x (itself differentiable).</summary>
    /// <param name="x">The distance to the threshold.</param>
    /// <returns>The pseudo-derivative, shaped like x.</returns>
    public Tensor Derivative(Tensor x) => Fn.Derivative.Invoke(x);

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>The surrogate derivatives of the literature, for <see cref="Neurons.Spike"/> and the neuron parameters.</summary>
public static class Surrogates
{
    /// <summary>SuperSpike / fast sigmoid (Zenke &amp; Ganguli 2018): 1 / (β|x| + 1)², peak 1 at x = 0.</summary>
    /// <param name="beta">The steepness β &gt; 0.</param>
    /// <returns>The surrogate.</returns>
    public static SpikeSurrogate SuperSpike(double beta = 100.0) => new(Surrogate.superSpike(beta));

    /// <summary>The fast-sigmoid surrogate (the same function as <see cref="SuperSpike"/>).</summary>
    /// <param name="beta">The steepness β &gt; 0.</param>
    /// <returns>The surrogate.</returns>
    public static SpikeSurrogate FastSigmoid(double beta = 100.0) => new(Surrogate.fastSigmoid(beta));

    /// <summary>The derivative of a logistic sigmoid of slope β: β σ(βx)(1 − σ(βx)).</summary>
    /// <param name="beta">The slope β &gt; 0.</param>
    /// <returns>The surrogate.</returns>
    public static SpikeSurrogate Sigmoid(double beta = 10.0) => new(Surrogate.sigmoid(beta));

    /// <summary>The derivative of (1/π) arctan(π α x / 2) + 1/2.</summary>
    /// <param name="alpha">The width parameter α &gt; 0.</param>
    /// <returns>The surrogate.</returns>
    public static SpikeSurrogate Arctan(double alpha = 2.0) => new(Surrogate.arctan(alpha));

    /// <summary>A triangle of half-width w: max(0, 1 − |x|/w) / w.</summary>
    /// <param name="width">The half-width w &gt; 0.</param>
    /// <returns>The surrogate.</returns>
    public static SpikeSurrogate Triangle(double width = 1.0) => new(Surrogate.triangle(width));

    /// <summary>A boxcar of total width w: 1/w where |x| &lt; w/2.</summary>
    /// <param name="width">The width w &gt; 0.</param>
    /// <returns>The surrogate.</returns>
    public static SpikeSurrogate Boxcar(double width = 1.0) => new(Surrogate.boxcar(width));

    /// <summary>The straight-through estimator: derivative 1 everywhere.</summary>
    public static SpikeSurrogate StraightThrough { get; } = new(Surrogate.straightThrough);

    /// <summary>A surrogate from any differentiable tensor function.</summary>
    /// <param name="name">The name shown in messages.</param>
    /// <param name="derivative">x ↦ the pseudo-derivative at x.</param>
    /// <returns>The surrogate.</returns>
    public static SpikeSurrogate Custom(string name, Func<Tensor, Tensor> derivative)
    {
        ArgumentNullException.ThrowIfNull(name);
        return new(SurrogateFn.Custom(name, Fn(derivative)));
    }
}

/// <summary>What happens to the membrane on a spike (the reset carries no gradient).</summary>
public enum ResetMode
{
    /// <summary>v ← VReset.</summary>
    ToValue,

    /// <summary>v ← v − (VTh − VReset), keeping the overshoot.</summary>
    BySubtraction,
}

/// <summary>Parameters of the current-based leaky integrate-and-fire neuron with an exponential synapse.
/// Times in seconds; the defaults are those of <c>Snn.Lif.defaults</c>.</summary>
public sealed record LifParameters
{
    /// <summary>Synaptic time constant (default 5 ms).</summary>
    public double TauSyn { get; init; } = Snn.Lif.defaults.TauSyn;

    /// <summary>Membrane time constant (default 10 ms).</summary>
    public double TauMem { get; init; } = Snn.Lif.defaults.TauMem;

    /// <summary>Leak (resting) potential (default 0).</summary>
    public double VLeak { get; init; } = Snn.Lif.defaults.VLeak;

    /// <summary>Threshold (default 1).</summary>
    public double VTh { get; init; } = Snn.Lif.defaults.VTh;

    /// <summary>Reset potential (default 0).</summary>
    public double VReset { get; init; } = Snn.Lif.defaults.VReset;

    /// <summary>The reset rule (default <see cref="ResetMode.ToValue"/>).</summary>
    public ResetMode Reset { get; init; } = ResetMode.ToValue;

    /// <summary>Time step (default 1 ms).</summary>
    public double Dt { get; init; } = Snn.Lif.defaults.Dt;

    /// <summary>The surrogate derivative of the spike (default SuperSpike(100)).</summary>
    public SpikeSurrogate Surrogate { get; init; } = new(Snn.Lif.defaults.Surrogate);

    /// <summary>Steps a neuron stays silent, its membrane held, after a spike (default 0).</summary>
    public int RefractorySteps { get; init; } = Snn.Lif.defaults.RefractorySteps;

    internal static Snn.Reset ResetOf(ResetMode mode) =>
        mode == ResetMode.BySubtraction ? Snn.Reset.BySubtraction : Snn.Reset.ToValue;

    internal Snn.Lif.Spec ToFSharp() =>
        new(TauSyn, TauMem, VLeak, VTh, VReset, ResetOf(Reset), Dt, (Surrogate ?? throw new ArgumentNullException(nameof(Surrogate))).Fn, RefractorySteps);

    /// <summary>Checks the parameters (positive time constants larger than Dt, threshold above reset).</summary>
    /// <returns>This instance.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range; the message names it.</exception>
    public LifParameters Validate()
    {
        Snn.Lif.validate(ToFSharp());
        return this;
    }
}

/// <summary>Parameters of the leaky integrator (non-spiking readout) with an exponential synapse.</summary>
public sealed record LiParameters
{
    /// <summary>Synaptic time constant (default 5 ms).</summary>
    public double TauSyn { get; init; } = Snn.Li.defaults.TauSyn;

    /// <summary>Membrane time constant (default 10 ms).</summary>
    public double TauMem { get; init; } = Snn.Li.defaults.TauMem;

    /// <summary>Leak potential (default 0).</summary>
    public double VLeak { get; init; } = Snn.Li.defaults.VLeak;

    /// <summary>Time step (default 1 ms).</summary>
    public double Dt { get; init; } = Snn.Li.defaults.Dt;

    internal Snn.Li.Spec ToFSharp() => new(TauSyn, TauMem, VLeak, Dt);

    /// <summary>Checks the parameters.</summary>
    /// <returns>This instance.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range.</exception>
    public LiParameters Validate()
    {
        Snn.Li.validate(ToFSharp());
        return this;
    }
}

/// <summary>Parameters of the adaptive LIF neuron (Bellec et al. 2018): the threshold rises by
/// <see cref="Beta"/> per unit of an adaptation variable that jumps by 1 per spike.</summary>
public sealed record AlifParameters
{
    /// <summary>The underlying LIF parameters.</summary>
    public LifParameters Lif { get; init; } = new();

    /// <summary>Adaptation time constant (default 200 ms).</summary>
    public double TauAdapt { get; init; } = Snn.Alif.defaults.TauAdapt;

    /// <summary>Threshold increase per unit of adaptation (default 0.2).</summary>
    public double Beta { get; init; } = Snn.Alif.defaults.Beta;

    internal Snn.Alif.Spec ToFSharp() =>
        new((Lif ?? throw new ArgumentNullException(nameof(Lif))).ToFSharp(), TauAdapt, Beta);

    /// <summary>Checks the parameters.</summary>
    /// <returns>This instance.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range.</exception>
    public AlifParameters Validate()
    {
        Snn.Alif.validate(ToFSharp());
        return this;
    }
}

/// <summary>Parameters of the adaptive exponential integrate-and-fire neuron (Brette &amp; Gerstner 2005),
/// the BrainScaleS-2 neuron. The defaults are dimensionless (rest 0, spike peak 1).</summary>
public sealed record AdExParameters
{
    private static readonly Snn.AdEx.Spec D = Snn.AdEx.defaults;

    /// <summary>Synaptic time constant.</summary>
    public double TauSyn { get; init; } = D.TauSyn;

    /// <summary>Membrane time constant.</summary>
    public double TauMem { get; init; } = D.TauMem;

    /// <summary>Adaptation time constant.</summary>
    public double TauAdapt { get; init; } = D.TauAdapt;

    /// <summary>Leak potential.</summary>
    public double VLeak { get; init; } = D.VLeak;

    /// <summary>Exponential (soft) threshold where the upswing starts.</summary>
    public double VT { get; init; } = D.VT;

    /// <summary>Slope factor of the exponential term (positive).</summary>
    public double DeltaT { get; init; } = D.DeltaT;

    /// <summary>Spike detection threshold (the peak), above VT.</summary>
    public double VTh { get; init; } = D.VTh;

    /// <summary>Reset potential.</summary>
    public double VReset { get; init; } = D.VReset;

    /// <summary>Subthreshold adaptation coupling.</summary>
    public double A { get; init; } = D.A;

    /// <summary>Spike-triggered adaptation increment.</summary>
    public double B { get; init; } = D.B;

    /// <summary>Refractory period in seconds.</summary>
    public double TRef { get; init; } = D.TRef;

    /// <summary>Time step.</summary>
    public double Dt { get; init; } = D.Dt;

    /// <summary>The surrogate derivative of the spike.</summary>
    public SpikeSurrogate Surrogate { get; init; } = new(D.Surrogate);

    internal Snn.AdEx.Spec ToFSharp() =>
        new(TauSyn, TauMem, TauAdapt, VLeak, VT, DeltaT, VTh, VReset, A, B, TRef, Dt,
            (Surrogate ?? throw new ArgumentNullException(nameof(Surrogate))).Fn);

    /// <summary>Checks the parameters.</summary>
    /// <returns>This instance.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range.</exception>
    public AdExParameters Validate()
    {
        Snn.AdEx.validate(ToFSharp());
        return this;
    }
}

/// <summary>Parameters of the non-leaky integrate-and-fire neuron.</summary>
public sealed record IfParameters
{
    /// <summary>Threshold (default 1).</summary>
    public double VTh { get; init; } = Snn.IF.defaults.VTh;

    /// <summary>Reset potential (default 0).</summary>
    public double VReset { get; init; } = Snn.IF.defaults.VReset;

    /// <summary>The reset rule.</summary>
    public ResetMode Reset { get; init; } = ResetMode.ToValue;

    /// <summary>The surrogate derivative of the spike.</summary>
    public SpikeSurrogate Surrogate { get; init; } = new(Snn.IF.defaults.Surrogate);

    /// <summary>Steps a neuron stays silent after a spike (default 0).</summary>
    public int RefractorySteps { get; init; } = Snn.IF.defaults.RefractorySteps;

    internal Snn.IF.Spec ToFSharp() =>
        new(VTh, VReset, LifParameters.ResetOf(Reset), (Surrogate ?? throw new ArgumentNullException(nameof(Surrogate))).Fn, RefractorySteps);

    /// <summary>Checks the parameters.</summary>
    /// <returns>This instance.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range.</exception>
    public IfParameters Validate()
    {
        Snn.IF.validate(ToFSharp());
        return this;
    }
}

/// <summary>State of a LIF or LI neuron population: membrane V and synaptic current I (a pytree).</summary>
/// <param name="V">Membrane potentials.</param>
/// <param name="I">Synaptic currents.</param>
/// <param name="Refractory">Silent steps left after a spike (LIF with a refractory period; null: none).</param>
public sealed record LifState(Tensor V, Tensor I, Tensor? Refractory = null)
{
    internal Snn.Lif.State ToFSharp() => new(V, I, Refractory ?? Tensor.ZerosLike(V));

    internal LifState With(Snn.Lif.State s) => new(s.V, s.I, Refractory is null ? null : s.Refractory);

    /// <summary>The zero state of the given shape (e.g. [batch, neurons]).</summary>
    /// <param name="shape">The shape of each variable.</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The state.</returns>
    public static LifState Zeros(int[] shape, DType? dtype = null) =>
        new(Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)), Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)));
}

/// <summary>State of an adaptive LIF population: membrane, current and adaptation (a pytree).</summary>
/// <param name="V">Membrane potentials.</param>
/// <param name="I">Synaptic currents.</param>
/// <param name="A">Adaptation variables.</param>
/// <param name="Refractory">Silent steps left after a spike (with a refractory period; null: none).</param>
public sealed record AlifState(Tensor V, Tensor I, Tensor A, Tensor? Refractory = null)
{
    /// <summary>The zero state of the given shape.</summary>
    /// <param name="shape">The shape of each variable.</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The state.</returns>
    public static AlifState Zeros(int[] shape, DType? dtype = null) =>
        new(Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)), Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)), Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)));
}

/// <summary>State of an AdEx population (a pytree).</summary>
/// <param name="V">Membrane potentials.</param>
/// <param name="I">Synaptic currents.</param>
/// <param name="W">Adaptation currents.</param>
/// <param name="Refractory">Remaining refractory time in seconds (0 when not refractory).</param>
public sealed record AdExState(Tensor V, Tensor I, Tensor W, Tensor Refractory)
{
    /// <summary>The zero state of the given shape.</summary>
    /// <param name="shape">The shape of each variable.</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The state.</returns>
    public static AdExState Zeros(int[] shape, DType? dtype = null) =>
        new(Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)), Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)),
            Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)), Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)));
}

/// <summary>State of a non-leaky integrate-and-fire population (a pytree).</summary>
/// <param name="V">Membrane potentials.</param>
/// <param name="Refractory">Silent steps left after a spike (with a refractory period; null: none).</param>
public sealed record IfState(Tensor V, Tensor? Refractory = null)
{
    /// <summary>The zero state of the given shape.</summary>
    /// <param name="shape">The shape.</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The state.</returns>
    public static IfState Zeros(int[] shape, DType? dtype = null) => new(Tensor.Full(shape, 0.0, Interop.DTypeOr32(dtype)));
}

/// <summary>The output of a LIF step with the membrane before the reset.</summary>
/// <param name="Spikes">The spikes (0/1).</param>
/// <param name="Membrane">The membrane potential before the reset.</param>
public sealed record SpikesAndMembrane(Tensor Spikes, Tensor Membrane);

/// <summary>
/// Spiking neuron models as pure step functions — <c>(parameters, state, input) ↦ (new state, output)</c>,
/// returned as a <see cref="ScanStep{TCarry}"/> so that a step plugs straight into
/// <see cref="Autodiff.Scan{TCarry}"/> — plus the spike nonlinearity and the fused whole-sequence
/// LIF/LI kernels. Layout is time-major; a step sees [batch, neurons] tensors. <see cref="Lif"/>,
/// <see cref="Li"/>, <see cref="Alif"/>, <see cref="AdEx"/> and <see cref="IntegrateAndFire"/> make the
/// neurons of <see cref="NetworkGraph"/> populations (GraphBuilders.cs).
/// </summary>
public static partial class Neurons
{
    /// <summary>Heaviside spike with a surrogate derivative: 1 where x &gt; 0, 0 where x ≤ 0; the
    /// derivative (forward and reverse mode) is the surrogate's.</summary>
    /// <param name="surrogate">The surrogate derivative.</param>
    /// <param name="x">The distance to the threshold (v − VTh).</param>
    /// <returns>The spikes.</returns>
    public static Tensor Spike(SpikeSurrogate surrogate, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(surrogate);
        return Snn.spike(surrogate.Fn).Invoke(x);
    }

    /// <summary>One LIF step: the membrane integrates the previous current, the current decays and
    /// receives the input, the neuron spikes above VTh and resets.</summary>
    /// <param name="p">The parameters.</param>
    /// <param name="state">The state.</param>
    /// <param name="input">The input current.</param>
    /// <returns>The new state and the spikes.</returns>
    public static ScanStep<LifState> LifStep(LifParameters p, LifState state, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(state);
        var spec = p.ToFSharp();
        var r = Snn.Lif.step(Snn.Lif.config(spec), Snn.Lif.paramsAs(state.V.DType, spec), state.ToFSharp(), input);
        return new(state.With(r.Item1), r.Item2);
    }

    /// <summary>One LIF step that also returns the membrane before the reset.</summary>
    /// <param name="p">The parameters.</param>
    /// <param name="state">The state.</param>
    /// <param name="input">The input current.</param>
    /// <returns>The new state, the spikes and the pre-reset membrane.</returns>
    public static ScanStep<LifState, SpikesAndMembrane> LifStepWithMembrane(LifParameters p, LifState state, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(state);
        var spec = p.ToFSharp();
        var r = Snn.Lif.stepWithMembrane(Snn.Lif.config(spec), Snn.Lif.paramsAs(state.V.DType, spec), state.ToFSharp(), input);
        return new(state.With(r.Item1), new SpikesAndMembrane(r.Item2.Item1, r.Item2.Item2));
    }

    /// <summary>One leaky-integrator step; the output is the new membrane potential.</summary>
    /// <param name="p">The parameters.</param>
    /// <param name="state">The state.</param>
    /// <param name="input">The input current.</param>
    /// <returns>The new state and the membrane.</returns>
    public static ScanStep<LifState> LiStep(LiParameters p, LifState state, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(state);
        var spec = p.ToFSharp();
        var r = Snn.Li.step(Snn.Li.config(spec), Snn.Li.paramsAs(state.V.DType, spec), new Snn.Li.State(state.V, state.I), input);
        return new(new LifState(r.Item1.V, r.Item1.I), r.Item2);
    }

    /// <summary>One adaptive-LIF step.</summary>
    /// <param name="p">The parameters.</param>
    /// <param name="state">The state.</param>
    /// <param name="input">The input current.</param>
    /// <returns>The new state and the spikes.</returns>
    public static ScanStep<AlifState> AlifStep(AlifParameters p, AlifState state, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(state);
        var spec = p.ToFSharp();
        var fs = new Snn.Alif.State(state.V, state.I, state.A, state.Refractory ?? Tensor.ZerosLike(state.V));
        var r = Snn.Alif.step(Snn.Alif.config(spec), Snn.Alif.paramsAs(state.V.DType, spec), fs, input);
        var s = r.Item1;
        return new(new AlifState(s.V, s.I, s.A, state.Refractory is null ? null : s.Refractory), r.Item2);
    }

    /// <summary>One AdEx step.</summary>
    /// <param name="p">The parameters.</param>
    /// <param name="state">The state.</param>
    /// <param name="input">The input current.</param>
    /// <returns>The new state and the spikes.</returns>
    public static ScanStep<AdExState> AdExStep(AdExParameters p, AdExState state, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(state);
        var spec = p.ToFSharp();
        var r = Snn.AdEx.step(Snn.AdEx.config(spec), Snn.AdEx.paramsAs(state.V.DType, spec), new Snn.AdEx.State(state.V, state.I, state.W, state.Refractory), input);
        var s = r.Item1;
        return new(new AdExState(s.V, s.I, s.W, s.Refractory), r.Item2);
    }

    /// <summary>One integrate-and-fire step: v ← v + input, spike and reset.</summary>
    /// <param name="p">The parameters.</param>
    /// <param name="state">The state.</param>
    /// <param name="input">The input.</param>
    /// <returns>The new state and the spikes.</returns>
    public static ScanStep<IfState> IfStep(IfParameters p, IfState state, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(state);
        var spec = p.ToFSharp();
        var fs = new Snn.IF.State(state.V, state.Refractory ?? Tensor.ZerosLike(state.V));
        var r = Snn.IF.step(Snn.IF.config(spec), Snn.IF.paramsAs(state.V.DType, spec), fs, input);
        return new(new IfState(r.Item1.V, state.Refractory is null ? null : r.Item1.Refractory), r.Item2);
    }

    /// <summary>A whole LIF sequence in one fused kernel: input currents [T, B, N] from a zero state
    /// to spikes and pre-reset membranes [T, B, N] (the same numbers as scanning <see cref="LifStep"/>).</summary>
    /// <param name="p">The parameters.</param>
    /// <param name="currents">Time-major input currents.</param>
    /// <returns>The spikes and membranes over time.</returns>
    public static SpikesAndMembrane LifSequence(LifParameters p, Tensor currents)
    {
        ArgumentNullException.ThrowIfNull(p);
        var r = Fused.lif(p.Validate().ToFSharp(), currents);
        return new SpikesAndMembrane(r.Item1, r.Item2);
    }

    /// <summary>A whole leaky-integrator sequence in one fused kernel: currents [T, B, N] to membranes [T, B, N].</summary>
    /// <param name="p">The parameters.</param>
    /// <param name="currents">Time-major input currents.</param>
    /// <returns>The membranes over time.</returns>
    public static Tensor LiSequence(LiParameters p, Tensor currents)
    {
        ArgumentNullException.ThrowIfNull(p);
        return Fused.li(p.Validate().ToFSharp(), currents);
    }

    /// <summary>x · w for spike inputs: sparse 0/1 rows are accumulated instead of multiplied
    /// (same values and derivatives as <c>x.MatMul(w)</c>).</summary>
    /// <param name="x">Inputs [..., in], typically spikes.</param>
    /// <param name="w">Weights [in, out].</param>
    /// <returns>The product [..., out].</returns>
    public static Tensor SpikeMatMul(Tensor x, Tensor w) => Fused.spikeMatmul(x, w);
}

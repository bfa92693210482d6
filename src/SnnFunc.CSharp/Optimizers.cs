using Microsoft.FSharp.Collections;
using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>The state of an <see cref="Optimizer"/> (moments, step counts ...): an immutable pytree,
/// saved with the parameters by <see cref="Trainer.SaveCheckpoint{TParams}"/>. Its key paths (see
/// <see cref="Pytree.LeavesWithPath{T}"/>) are those of the core's state, e.g. <c>0/Mu/0/W</c> (part 0
/// of a chain, Adam's first moment of the parameter <c>0/W</c>): the wrapper adds no key.</summary>
public sealed class OptimizerState : IKeyedTree
{
    internal OptimizerState(FSharpList<object> inner) => Inner = inner;

    internal FSharpList<object> Inner { get; }

    /// <summary>All state tensors in order.</summary>
    public IReadOnlyList<Tensor> Leaves => Tree.leaves(Inner);

    object[] ITree.Children => [Inner];

    KeyPath[] IKeyedTree.ChildKeys => [KeyPath.Root];

    object ITree.Rebuild(object[] children) => new OptimizerState((FSharpList<object>)children[0]);

    /// <inheritdoc/>
    public override string ToString() => $"OptimizerState({Inner.Length} parts, {Leaves.Count} tensors)";
}

/// <summary>The result of <see cref="Optimizer.Update{TParams}"/>: the updates and the new state.</summary>
/// <typeparam name="TParams">The parameters' pytree type.</typeparam>
/// <param name="Updates">The updates, shaped like the parameters (add them with <see cref="Optimizers.ApplyUpdates{TParams}"/>).</param>
/// <param name="State">The new optimizer state.</param>
public sealed record OptimizerUpdate<TParams>(TParams Updates, OptimizerState State);

/// <summary>The result of <see cref="Optimizer.Step{TParams}"/>: the new parameters and state.</summary>
/// <typeparam name="TParams">The parameters' pytree type.</typeparam>
/// <param name="Parameters">The updated parameters.</param>
/// <param name="State">The new optimizer state.</param>
public sealed record OptimizerStep<TParams>(TParams Parameters, OptimizerState State);

/// <summary>
/// An optax-style gradient transformation: <see cref="Init{TParams}"/> makes a state from the
/// parameters, <see cref="Update{TParams}"/> turns gradients into updates. Pure: nothing is mutated.
/// Build one from <see cref="Optimizers"/>; works on any parameter pytree.
/// </summary>
public sealed class Optimizer
{
    internal Optimizer(GradientTransformation inner) => Inner = inner;

    internal GradientTransformation Inner { get; }

    /// <summary>The initial state for these parameters.</summary>
    /// <typeparam name="TParams">The parameters' pytree type.</typeparam>
    /// <param name="parameters">The parameters.</param>
    /// <returns>The state.</returns>
    public OptimizerState Init<TParams>(TParams parameters) => new(Optim.init(Inner, parameters));

    /// <summary>The updates for gradients (same structure as the parameters) and the new state.</summary>
    /// <typeparam name="TParams">The parameters' pytree type.</typeparam>
    /// <param name="gradients">The gradients.</param>
    /// <param name="state">The current state.</param>
    /// <param name="parameters">The current parameters.</param>
    /// <returns>The updates and the new state.</returns>
    public OptimizerUpdate<TParams> Update<TParams>(TParams gradients, OptimizerState state, TParams parameters)
    {
        ArgumentNullException.ThrowIfNull(state);
        var r = Optim.update(Inner, gradients, state.Inner, parameters);
        return new OptimizerUpdate<TParams>(r.Item1, new OptimizerState(r.Item2));
    }

    /// <summary>Update and apply in one call: the new parameters and state.</summary>
    /// <typeparam name="TParams">The parameters' pytree type.</typeparam>
    /// <param name="parameters">The current parameters.</param>
    /// <param name="gradients">The gradients.</param>
    /// <param name="state">The current state.</param>
    /// <returns>The new parameters and state.</returns>
    public OptimizerStep<TParams> Step<TParams>(TParams parameters, TParams gradients, OptimizerState state)
    {
        var u = Update(gradients, state, parameters);
        return new OptimizerStep<TParams>(Optim.applyUpdates(parameters, u.Updates), u.State);
    }
}

/// <summary>Learning-rate schedules: functions from the step count (0-based) to a learning rate, both
/// rank-0 Float64 tensors, so that an optimizer stays traceable (for example under Autodiff.Vmap,
/// training an ensemble of models at once). A schedule of your own composes tensor operations
/// on the count, e.g. <c>step => (step * -0.01).Exp() * 0.1</c>; <see cref="LearningRate"/> evaluates
/// one at a step.</summary>
public static class Schedules
{
    /// <summary>The learning rate of a schedule at a step, as a number (for logs and tests).</summary>
    /// <param name="schedule">The schedule.</param>
    /// <param name="step">The step count (0-based).</param>
    /// <returns>The learning rate.</returns>
    public static double LearningRate(Func<Tensor, Tensor> schedule, int step) => Optim.learningRate(Fn(schedule), step);

    /// <summary>A constant learning rate.</summary>
    /// <param name="learningRate">The rate.</param>
    /// <returns>The schedule.</returns>
    public static Func<Tensor, Tensor> Constant(double learningRate) => step => Optim.constant(learningRate, step);

    /// <summary>lr · rate^(step / transitionSteps), continuously or in steps.</summary>
    /// <param name="learningRate">The initial rate.</param>
    /// <param name="transitionSteps">Steps per factor of <paramref name="decayRate"/>.</param>
    /// <param name="decayRate">The decay factor.</param>
    /// <param name="staircase">Decay in whole steps instead of continuously.</param>
    /// <returns>The schedule.</returns>
    public static Func<Tensor, Tensor> ExponentialDecay(double learningRate, int transitionSteps, double decayRate, bool staircase = false) =>
        Func(Optim.exponentialDecay(learningRate, transitionSteps, decayRate, staircase));

    /// <summary>Cosine decay from lr to alpha · lr over decaySteps, then constant.</summary>
    /// <param name="learningRate">The initial rate.</param>
    /// <param name="decaySteps">The length of the decay.</param>
    /// <param name="alpha">The final fraction of the initial rate.</param>
    /// <returns>The schedule.</returns>
    public static Func<Tensor, Tensor> CosineDecay(double learningRate, int decaySteps, double alpha = 0.0) =>
        Func(Optim.cosineDecay(learningRate, decaySteps, alpha));
}

/// <summary>The optimizers and gradient transformations of optax, for any parameter pytree.</summary>
public static class Optimizers
{
    /// <summary>Stochastic gradient descent: p ← p − lr · g.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <returns>The optimizer.</returns>
    public static Optimizer Sgd(double learningRate) => new(Optim.sgd(learningRate));

    /// <summary>Stochastic gradient descent with a learning-rate schedule.</summary>
    /// <param name="schedule">step ↦ learning rate (see <see cref="Schedules"/>).</param>
    /// <returns>The optimizer.</returns>
    public static Optimizer Sgd(Func<Tensor, Tensor> schedule) => new(Optim.sgdWith(Fn(schedule)));

    /// <summary>SGD with (heavy-ball or Nesterov) momentum.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="beta">The momentum decay.</param>
    /// <param name="nesterov">Use Nesterov momentum.</param>
    /// <returns>The optimizer.</returns>
    public static Optimizer Momentum(double learningRate, double beta = 0.9, bool nesterov = false) =>
        nesterov ? Chain(TraceMomentum(beta, true), Sgd(learningRate)) : new(Optim.momentum(learningRate, beta));

    /// <summary>Adam (Kingma &amp; Ba).</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="beta1">The first-moment decay.</param>
    /// <param name="beta2">The second-moment decay.</param>
    /// <param name="epsilon">The denominator's offset.</param>
    /// <returns>The optimizer.</returns>
    public static Optimizer Adam(double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8) =>
        new(Optim.adamWith(Fn(Schedules.Constant(learningRate)), beta1, beta2, epsilon));

    /// <summary>Adam with a learning-rate schedule.</summary>
    /// <param name="schedule">step ↦ learning rate (see <see cref="Schedules"/>).</param>
    /// <param name="beta1">The first-moment decay.</param>
    /// <param name="beta2">The second-moment decay.</param>
    /// <param name="epsilon">The denominator's offset.</param>
    /// <returns>The optimizer.</returns>
    public static Optimizer Adam(Func<Tensor, Tensor> schedule, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8) =>
        new(Optim.adamWith(Fn(schedule), beta1, beta2, epsilon));

    /// <summary>AdamW: Adam with decoupled weight decay.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="weightDecay">The weight decay.</param>
    /// <returns>The optimizer.</returns>
    public static Optimizer AdamW(double learningRate = 1e-3, double weightDecay = 1e-4) => new(Optim.adamw(learningRate, weightDecay));

    /// <summary>Rescales all updates together so that their global L2 norm is at most maxNorm.</summary>
    /// <param name="maxNorm">The largest norm.</param>
    /// <returns>The transformation.</returns>
    public static Optimizer ClipByGlobalNorm(double maxNorm) => new(Optim.clipByGlobalNorm(maxNorm));

    /// <summary>Multiplies updates by a constant.</summary>
    /// <param name="factor">The factor.</param>
    /// <returns>The transformation.</returns>
    public static Optimizer Scale(double factor) => new(Optim.scale(factor));

    /// <summary>Multiplies updates by −schedule(step).</summary>
    /// <param name="schedule">step ↦ learning rate.</param>
    /// <returns>The transformation.</returns>
    public static Optimizer ScaleBySchedule(Func<Tensor, Tensor> schedule) => new(Optim.scaleBySchedule(Fn(schedule)));

    /// <summary>Adam's bias-corrected moment scaling (without the learning rate).</summary>
    /// <param name="beta1">The first-moment decay.</param>
    /// <param name="beta2">The second-moment decay.</param>
    /// <param name="epsilon">The denominator's offset.</param>
    /// <returns>The transformation.</returns>
    public static Optimizer ScaleByAdam(double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8) =>
        new(Optim.scaleByAdam(beta1, beta2, epsilon));

    /// <summary>Momentum accumulation: velocity = beta · velocity + g (without the learning rate).</summary>
    /// <param name="beta">The decay.</param>
    /// <param name="nesterov">Use Nesterov momentum.</param>
    /// <returns>The transformation.</returns>
    public static Optimizer TraceMomentum(double beta = 0.9, bool nesterov = false) => new(Optim.traceMomentum(beta, nesterov));

    /// <summary>Adds weightDecay · parameters to the updates.</summary>
    /// <param name="weightDecay">The decay.</param>
    /// <returns>The transformation.</returns>
    public static Optimizer AddDecayedWeights(double weightDecay) => new(Optim.addDecayedWeights(weightDecay));

    /// <summary>Applies transformations in order (e.g. clipping, then Adam).</summary>
    /// <param name="transformations">The transformations.</param>
    /// <returns>The chained transformation.</returns>
    public static Optimizer Chain(params Optimizer[] transformations)
    {
        ArgumentNullException.ThrowIfNull(transformations);
        return new(Optim.chain(List(transformations.Select(t => t.Inner))));
    }

    /// <summary>Replaces updates by zeros: freezes the parameters it is applied to (combine it with
    /// <see cref="Masked"/> or <see cref="MultiTransform"/> to freeze a subset).</summary>
    /// <returns>The transformation.</returns>
    public static Optimizer SetToZero() => new(Optim.setToZero);

    /// <summary>Applies <paramref name="inner"/> only to the parameter leaves whose key path the mask
    /// selects; the other leaves keep their incoming updates (optax's <c>masked</c>). The inner state
    /// covers the selected leaves only. Freeze a subset:
    /// <c>Chain(Masked(p => p.EndsWith("TauMem"), SetToZero()), Masked(p => !p.EndsWith("TauMem"), Adam(1e-3)))</c>.</summary>
    /// <param name="mask">Key path (as in <see cref="Pytree.LeavesWithPath{T}"/>, e.g. <c>0/W</c>) ↦ whether inner applies.</param>
    /// <param name="inner">The transformation for the selected leaves.</param>
    /// <returns>The transformation.</returns>
    public static Optimizer Masked(Func<string, bool> mask, Optimizer inner)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(inner);
        return new(Optim.masked(Fn<KeyPath, bool>(p => mask(p.Name)), inner.Inner));
    }

    /// <summary>Gives each parameter leaf the transformation of its label (optax's
    /// <c>multi_transform</c>), e.g. a learning rate of its own for the time constants. A label
    /// without a transformation is an <see cref="ArgumentException"/> naming the leaf and the label.</summary>
    /// <param name="labels">Key path (as in <see cref="Pytree.LeavesWithPath{T}"/>) ↦ label.</param>
    /// <param name="transformations">The transformation of each label.</param>
    /// <returns>The transformation.</returns>
    public static Optimizer MultiTransform(Func<string, string> labels, IReadOnlyDictionary<string, Optimizer> transformations)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(transformations);
        var map = MapModule.OfSeq(transformations.Select(kv => Tuple.Create(kv.Key, (kv.Value ?? throw new ArgumentException($"Optimizers.MultiTransform: the transformation for the label '{kv.Key}' is null", nameof(transformations))).Inner)));
        return new(Optim.multiTransform(Fn<KeyPath, string>(p => labels(p.Name)), map));
    }

    /// <summary>Parameters plus updates, leaf by leaf.</summary>
    /// <typeparam name="TParams">The parameters' pytree type.</typeparam>
    /// <param name="parameters">The parameters.</param>
    /// <param name="updates">The updates (same structure).</param>
    /// <returns>The new parameters.</returns>
    public static TParams ApplyUpdates<TParams>(TParams parameters, TParams updates) => Optim.applyUpdates(parameters, updates);

    /// <summary>The exponential moving average of the parameters (Polyak averaging), leaf by leaf:
    /// decay · average + (1 − decay) · parameters; evaluate it in place of the last iterate.</summary>
    /// <typeparam name="TParams">The parameters' pytree type.</typeparam>
    /// <param name="decay">The decay, in [0, 1).</param>
    /// <param name="average">The average so far (the initial parameters at the start).</param>
    /// <param name="parameters">The parameters after the latest step (same structure).</param>
    /// <returns>The new average.</returns>
    public static TParams MovingAverage<TParams>(double decay, TParams average, TParams parameters) => Optim.movingAverage(decay, average, parameters);
}

using Microsoft.FSharp.Core;
using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>
/// The transformations of <c>SnnFunc.Ad</c> for C#: derivatives in reverse mode (<see cref="Grad(Func{Tensor, Tensor})"/>,
/// <see cref="ValueAndGrad{TParams}(Func{TParams, Tensor}, TParams)"/>, <see cref="Vjp{TIn, TOut}"/>) and forward
/// mode (<see cref="Jvp{TIn, TOut}"/>), Jacobians and Hessians, batching (<see cref="Vmap(Func{Tensor, Tensor})"/>),
/// loops (<see cref="Scan{TCarry}"/>) and custom derivative rules. All take <see cref="Func{T, TResult}"/>
/// delegates, nest in any combination (a gradient of a gradient, a vmap of a gradient ...) and are
/// thread-safe.
/// </summary>
/// <remarks>
/// Generic overloads accept pytrees: a tensor; a C# record or class whose public properties are
/// pytrees (rebuilt through a constructor whose parameters match properties, then setters; a
/// computed property without a tensor is recomputed, one holding a tensor that cannot be rebuilt is
/// an <see cref="ArgumentException"/> naming the type and the property); a class
/// implementing <see cref="ITree"/>; <see cref="Dictionary{TKey, TValue}"/> and
/// <see cref="IReadOnlyDictionary{TKey, TValue}"/> values of those; arrays, <see cref="List{T}"/>
/// and tuples; F# records, lists and maps. Non-tensor values inside (numbers, strings) are carried
/// along unchanged and not differentiated.
/// </remarks>
public static class Autodiff
{
    // Reverse mode ------------------------------------------------------------------------------

    /// <summary>The gradient function of a scalar function of one tensor.</summary>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <returns>x ↦ ∇f(x), shaped like x.</returns>
    public static Func<Tensor, Tensor> Grad(Func<Tensor, Tensor> f)
    {
        var fs = Fn(f);
        return x => Ad.grad(fs, x);
    }

    /// <summary>The gradient function of a scalar function of a pytree (for example a parameter record).</summary>
    /// <typeparam name="TParams">The argument's type.</typeparam>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <returns>x ↦ ∇f(x), with the structure of x.</returns>
    public static Func<TParams, TParams> Grad<TParams>(Func<TParams, Tensor> f)
    {
        var fs = Fn(f);
        return x => Ad.grad(fs, x);
    }

    /// <summary>The gradient of a scalar function at a point.</summary>
    /// <typeparam name="TParams">The argument's type (a tensor or a pytree).</typeparam>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <param name="x">The point.</param>
    /// <returns>∇f(x), with the structure of x.</returns>
    public static TParams Grad<TParams>(Func<TParams, Tensor> f, TParams x) => Ad.grad(Fn(f), x);

    /// <summary>The value of a scalar function and its gradient at a point.</summary>
    /// <typeparam name="TParams">The argument's type (a tensor or a pytree).</typeparam>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <param name="x">The point.</param>
    /// <returns><c>.Value</c> = f(x), <c>.Gradient</c> = ∇f(x).</returns>
    public static ValueAndGradient<TParams> ValueAndGrad<TParams>(Func<TParams, Tensor> f, TParams x)
    {
        var r = Ad.valueAndGrad(Fn(f), x);
        return new ValueAndGradient<TParams>(r.Item1, r.Item2);
    }

    /// <summary>The value of a scalar tensor function and its gradient at a point.</summary>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <param name="x">The point.</param>
    /// <returns><c>.Value</c> = f(x), <c>.Gradient</c> = ∇f(x).</returns>
    public static ValueAndGradient<Tensor> ValueAndGrad(Func<Tensor, Tensor> f, Tensor x) => ValueAndGrad<Tensor>(f, x);

    /// <summary>The value-and-gradient function of a scalar function.</summary>
    /// <typeparam name="TParams">The argument's type (a tensor or a pytree).</typeparam>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <returns>x ↦ (f(x), ∇f(x)).</returns>
    public static Func<TParams, ValueAndGradient<TParams>> ValueAndGrad<TParams>(Func<TParams, Tensor> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return x => ValueAndGrad(f, x);
    }

    /// <summary>Like <see cref="ValueAndGrad{TParams}(Func{TParams, Tensor}, TParams)"/> for a function that also
    /// returns auxiliary data (predictions, metrics, new states), which is passed through undifferentiated.</summary>
    /// <typeparam name="TParams">The argument's type.</typeparam>
    /// <typeparam name="TAux">The auxiliary data's type.</typeparam>
    /// <param name="f">A function returning a scalar value and auxiliary data.</param>
    /// <param name="x">The point.</param>
    /// <returns>The value, the auxiliary data and the gradient of the value.</returns>
    public static ValueAuxAndGradient<TParams, TAux> ValueAndGradWithAux<TParams, TAux>(
        Func<TParams, ValueWithAux<TAux>> f, TParams x)
    {
        ArgumentNullException.ThrowIfNull(f);
        var r = Ad.valueAndGradAux(Fn<TParams, Tuple<Tensor, TAux>>(p =>
        {
            var v = f(p);
            return Tuple.Create(v.Value, v.Aux);
        }), x);
        return new ValueAuxAndGradient<TParams, TAux>(r.Item1.Item1, r.Item1.Item2, r.Item2);
    }

    /// <summary>Reverse mode: the outputs of f at x and the pullback from output cotangents to input cotangents.</summary>
    /// <typeparam name="TIn">The input type (a tensor or a pytree).</typeparam>
    /// <typeparam name="TOut">The output type (a tensor or a pytree).</typeparam>
    /// <param name="f">The function.</param>
    /// <param name="x">The point.</param>
    /// <returns><c>.Value</c> = f(x) and <c>.Pullback</c>: u ↦ uᵀ J.</returns>
    public static VjpResult<TIn, TOut> Vjp<TIn, TOut>(Func<TIn, TOut> f, TIn x)
    {
        var r = Ad.vjp(Fn(f), x);
        return new VjpResult<TIn, TOut>(r.Item1, Func(r.Item2));
    }

    /// <summary>The outputs of f at x and the linear map v ↦ J v, evaluated from the recorded
    /// operations without running f again.</summary>
    /// <typeparam name="TIn">The input type.</typeparam>
    /// <typeparam name="TOut">The output type.</typeparam>
    /// <param name="f">The function.</param>
    /// <param name="x">The linearisation point.</param>
    /// <returns><c>.Value</c> = f(x) and <c>.Pushforward</c>.</returns>
    public static LinearizeResult<TIn, TOut> Linearize<TIn, TOut>(Func<TIn, TOut> f, TIn x)
    {
        var r = Ad.linearize(Fn(f), x);
        return new LinearizeResult<TIn, TOut>(r.Item1, Func(r.Item2));
    }

    // Forward mode ------------------------------------------------------------------------------

    /// <summary>Forward mode: the outputs of f at <paramref name="primals"/> and their derivative
    /// along <paramref name="tangents"/> (same structure and shapes as the primals).</summary>
    /// <typeparam name="TIn">The input type (a tensor or a pytree).</typeparam>
    /// <typeparam name="TOut">The output type (a tensor or a pytree).</typeparam>
    /// <param name="f">The function.</param>
    /// <param name="primals">The point.</param>
    /// <param name="tangents">The direction.</param>
    /// <returns><c>.Value</c> = f(x), <c>.Tangent</c> = J v.</returns>
    public static JvpResult<TOut> Jvp<TIn, TOut>(Func<TIn, TOut> f, TIn primals, TIn tangents)
    {
        var r = Ad.jvp(Fn(f), primals, tangents);
        return new JvpResult<TOut>(r.Item1, r.Item2);
    }

    /// <summary>The Jacobian of a tensor function: shape = output shape followed by input shape.</summary>
    /// <param name="f">The function.</param>
    /// <param name="x">The point.</param>
    /// <param name="mode">Reverse (default) or forward mode; both give the same numbers.</param>
    /// <returns>The Jacobian tensor.</returns>
    public static Tensor Jacobian(Func<Tensor, Tensor> f, Tensor x, JacobianMode mode = JacobianMode.Reverse) =>
        mode == JacobianMode.Forward ? Ad.jacfwd(Fn(f), x) : Ad.jacrev(Fn(f), x);

    /// <summary>The Jacobian function of a tensor function.</summary>
    /// <param name="f">The function.</param>
    /// <param name="mode">Reverse (default) or forward mode.</param>
    /// <returns>x ↦ J(x).</returns>
    public static Func<Tensor, Tensor> Jacobian(Func<Tensor, Tensor> f, JacobianMode mode = JacobianMode.Reverse)
    {
        var fs = Fn(f);
        return mode == JacobianMode.Forward ? x => Ad.jacfwd(fs, x) : x => Ad.jacrev(fs, x);
    }

    /// <summary>The Hessian of a scalar function (forward over reverse): shape = input shape twice.</summary>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <param name="x">The point.</param>
    /// <returns>The Hessian tensor.</returns>
    public static Tensor Hessian(Func<Tensor, Tensor> f, Tensor x) => Ad.hessian(Fn(f), x);

    /// <summary>The Hessian function of a scalar function.</summary>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <returns>x ↦ H(x).</returns>
    public static Func<Tensor, Tensor> Hessian(Func<Tensor, Tensor> f)
    {
        var fs = Fn(f);
        return x => Ad.hessian(fs, x);
    }

    /// <summary>The Hessian-vector product H(x) v of a scalar function, without forming the Hessian.</summary>
    /// <typeparam name="TParams">The argument's type (a tensor or a pytree).</typeparam>
    /// <param name="f">A function returning a rank-0 tensor.</param>
    /// <param name="x">The point.</param>
    /// <param name="v">The vector (same structure as x).</param>
    /// <returns>H v, with the structure of x.</returns>
    public static TParams Hvp<TParams>(Func<TParams, Tensor> f, TParams x, TParams v) => Ad.hvp(Fn(f), x, v);

    // Batching ------------------------------------------------------------------------------------

    /// <summary>Maps a tensor function over axis 0 of its argument; the results are stacked along axis 0.
    /// The function runs once on the whole batch (every primitive has a batching rule), not once per row.</summary>
    /// <param name="f">The per-example function.</param>
    /// <returns>The batched function.</returns>
    public static Func<Tensor, Tensor> Vmap(Func<Tensor, Tensor> f)
    {
        var fs = Fn(f);
        return x => Ad.vmap(fs, x);
    }

    /// <summary>Maps a function over axis 0 of every leaf of its pytree argument.</summary>
    /// <typeparam name="TIn">The input pytree type.</typeparam>
    /// <typeparam name="TOut">The output pytree type.</typeparam>
    /// <param name="f">The per-example function.</param>
    /// <returns>The batched function; every output leaf is stacked along axis 0.</returns>
    public static Func<TIn, TOut> Vmap<TIn, TOut>(Func<TIn, TOut> f)
    {
        var fs = Fn(f);
        return x => Ad.vmap(fs, x);
    }

    /// <summary>Maps a tensor function over a chosen axis of its argument, putting the batch at a chosen output axis.</summary>
    /// <param name="f">The per-example function.</param>
    /// <param name="inAxis">The mapped axis of the argument.</param>
    /// <param name="outAxis">Where the batch axis goes in the result.</param>
    /// <returns>The batched function.</returns>
    public static Func<Tensor, Tensor> Vmap(Func<Tensor, Tensor> f, int inAxis, int outAxis = 0) =>
        Vmap(f, new int?[] { inAxis }, outAxis);

    /// <summary>Maps a function over chosen axes of the leaves of its pytree argument.</summary>
    /// <typeparam name="TIn">The input pytree type.</typeparam>
    /// <typeparam name="TOut">The output pytree type.</typeparam>
    /// <param name="f">The per-example function.</param>
    /// <param name="inAxes">Per leaf of the argument (in flattening order, see <see cref="Pytree.Leaves{T}"/>):
    /// the mapped axis, or null for a leaf that is shared by all examples.</param>
    /// <param name="outAxis">Where the batch axis goes in every output leaf.</param>
    /// <returns>The batched function.</returns>
    public static Func<TIn, TOut> Vmap<TIn, TOut>(Func<TIn, TOut> f, IReadOnlyList<int?> inAxes, int outAxis = 0)
    {
        ArgumentNullException.ThrowIfNull(inAxes);
        var fs = Fn(f);
        var axes = inAxes.Select(a => Option(a)).ToArray();
        return x => Ad.vmapWith(axes!, outAxis, fs, x);
    }

    // Loops ---------------------------------------------------------------------------------------

    private static ScanOptions Options(bool reverse, int checkpointEvery, int? length) =>
        new(reverse, checkpointEvery, Option(length));

    /// <summary>Runs <paramref name="step"/> over axis 0 of <paramref name="xs"/>, threading a carry:
    /// JAX's <c>lax.scan</c>. Differentiable in both modes; reverse mode walks the steps backwards
    /// without recursion.</summary>
    /// <typeparam name="TCarry">The carry: a tensor or any pytree (for example a neuron state record).</typeparam>
    /// <param name="step">(carry, x_t) ↦ (next carry, output_t).</param>
    /// <param name="init">The initial carry.</param>
    /// <param name="xs">The inputs, time along axis 0.</param>
    /// <param name="reverse">Run from the last step to the first (outputs are still in index order).</param>
    /// <param name="checkpointEvery">When k &gt; 0, keep the carry only every k steps and recompute the
    /// segments in the backward pass (memory O(T/k + k) instead of O(T)).</param>
    /// <returns><c>.Carry</c>: the last carry; <c>.Outputs</c>: the outputs stacked along axis 0.</returns>
    public static ScanResult<TCarry> Scan<TCarry>(
        Func<TCarry, Tensor, ScanStep<TCarry>> step, TCarry init, Tensor xs, bool reverse = false, int checkpointEvery = 0)
    {
        ArgumentNullException.ThrowIfNull(step);
        var fs = Fn<TCarry, Tensor, Tuple<TCarry, Tensor>>((c, x) =>
        {
            var r = step(c, x);
            return Tuple.Create(r.Carry, r.Output);
        });
        var result = Ad.scanWith(Options(reverse, checkpointEvery, null), fs, init, xs);
        return new ScanResult<TCarry>(result.Item1, result.Item2);
    }

    /// <summary>The general scan: inputs, carry and outputs are pytrees. See <see cref="Scan{TCarry}"/>.</summary>
    /// <typeparam name="TCarry">The carry pytree.</typeparam>
    /// <typeparam name="TInput">The input pytree; every leaf has time along axis 0.</typeparam>
    /// <typeparam name="TOutput">The output pytree.</typeparam>
    /// <param name="step">(carry, x_t) ↦ (next carry, output_t).</param>
    /// <param name="init">The initial carry.</param>
    /// <param name="xs">The inputs.</param>
    /// <param name="reverse">Run from the last step to the first.</param>
    /// <param name="checkpointEvery">Checkpoint segments of this many steps (0: off).</param>
    /// <param name="length">The number of steps when <paramref name="xs"/> has no tensor leaves.</param>
    /// <returns>The last carry and the stacked outputs.</returns>
    public static ScanResult<TCarry, TOutput> Scan<TCarry, TInput, TOutput>(
        Func<TCarry, TInput, ScanStep<TCarry, TOutput>> step, TCarry init, TInput xs,
        bool reverse = false, int checkpointEvery = 0, int? length = null)
    {
        ArgumentNullException.ThrowIfNull(step);
        var fs = Fn<TCarry, TInput, Tuple<TCarry, TOutput>>((c, x) =>
        {
            var r = step(c, x);
            return Tuple.Create(r.Carry, r.Output);
        });
        var result = Ad.scanWith(Options(reverse, checkpointEvery, length), fs, init, xs);
        return new ScanResult<TCarry, TOutput>(result.Item1, result.Item2);
    }

    // Custom rules --------------------------------------------------------------------------------

    /// <summary>The value unchanged, with a zero derivative in every mode.</summary>
    /// <param name="x">The tensor.</param>
    /// <returns>x, treated as a constant by the transforms.</returns>
    public static Tensor StopGradient(Tensor x) => Ad.stopGradient(x);

    /// <summary>f with a user-supplied forward rule. Reverse mode works too: the rule's tangent must
    /// be linear in the input tangent (it is recorded and transposed).</summary>
    /// <param name="f">The function.</param>
    /// <param name="rule">(x, ẋ) ↦ (f(x), tangent).</param>
    /// <returns>The function with the rule attached.</returns>
    public static Func<Tensor, Tensor> CustomJvp(Func<Tensor, Tensor> f, Func<Tensor, Tensor, JvpResult<Tensor>> rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var fs = Ad.customJvp(Fn(f), Fn<Tensor, Tensor, Tuple<Tensor, Tensor>>((x, dx) =>
        {
            var r = rule(x, dx);
            return Tuple.Create(r.Value, r.Tangent);
        }));
        return fs.Invoke;
    }

    /// <summary>The several-argument form of <see cref="CustomJvp"/> on arrays of tensors.</summary>
    /// <param name="f">The function.</param>
    /// <param name="rule">(primals, tangents) ↦ (outputs, output tangents); a null tangent is zero.</param>
    /// <returns>The function with the rule attached.</returns>
    public static Func<Tensor[], Tensor[]> CustomJvpMany(Func<Tensor[], Tensor[]> f, Func<Tensor[], Tensor?[], JvpManyResult> rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var fs = Ad.customJvpN(Fn(f), Fn<Tensor[], Tensor[], Tuple<Tensor[], Tensor[]>>((x, dx) =>
        {
            var r = rule(x, dx);
            return Tuple.Create(r.Values, r.Tangents)!;
        }));
        return fs.Invoke;
    }

    /// <summary>f with a user-supplied reverse rule (reverse mode only: grad, vjp).</summary>
    /// <typeparam name="TResiduals">What the forward pass keeps for the backward pass.</typeparam>
    /// <param name="f">The function (used when no derivative is taken).</param>
    /// <param name="forward">x ↦ (f(x), residuals).</param>
    /// <param name="backward">(residuals, output cotangent) ↦ input cotangent.</param>
    /// <returns>The function with the rule attached.</returns>
    public static Func<Tensor, Tensor> CustomVjp<TResiduals>(
        Func<Tensor, Tensor> f, Func<Tensor, VjpForward<TResiduals>> forward, Func<TResiduals, Tensor, Tensor> backward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        var fs = Ad.customVjp(Fn(f), Fn<Tensor, Tuple<Tensor, TResiduals>>(x =>
        {
            var r = forward(x);
            return Tuple.Create(r.Value, r.Residuals);
        }), Fn(backward));
        return fs.Invoke;
    }

    /// <summary>f, but reverse mode stores only its inputs and recomputes its inside during the
    /// backward pass (trading compute for memory).</summary>
    /// <typeparam name="TIn">The input pytree type.</typeparam>
    /// <typeparam name="TOut">The output pytree type.</typeparam>
    /// <param name="f">The function.</param>
    /// <returns>The checkpointed function (same values and derivatives).</returns>
    public static Func<TIn, TOut> Checkpoint<TIn, TOut>(Func<TIn, TOut> f)
    {
        var fs = Fn(f);
        return x => Ad.checkpoint(fs, x);
    }

    /// <summary>A tensor function whose reverse mode recomputes its inside (see <see cref="Checkpoint{TIn, TOut}"/>).</summary>
    /// <param name="f">The function.</param>
    /// <returns>The checkpointed function.</returns>
    public static Func<Tensor, Tensor> Checkpoint(Func<Tensor, Tensor> f) => Checkpoint<Tensor, Tensor>(f);
}

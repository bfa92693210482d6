namespace SnnFunc.CSharp;

/// <summary>What a scan step returns: the next carry and this step's output (a tensor).</summary>
/// <typeparam name="TCarry">The carry: a tensor or any pytree (record, class, dictionary, array ...).</typeparam>
/// <param name="Carry">The carry passed to the next step (same structure and shapes as the initial one).</param>
/// <param name="Output">This step's output; the outputs of all steps are stacked along a new axis 0.</param>
public readonly record struct ScanStep<TCarry>(TCarry Carry, Tensor Output);

/// <summary>What a scan step returns when its output is a pytree: the next carry and the output.</summary>
/// <typeparam name="TCarry">The carry pytree.</typeparam>
/// <typeparam name="TOutput">The output pytree; every leaf is stacked along a new axis 0.</typeparam>
/// <param name="Carry">The carry passed to the next step.</param>
/// <param name="Output">This step's output.</param>
public readonly record struct ScanStep<TCarry, TOutput>(TCarry Carry, TOutput Output);

/// <summary>The result of <see cref="Autodiff.Scan{TCarry}"/>: the last carry and the stacked outputs.</summary>
/// <typeparam name="TCarry">The carry pytree.</typeparam>
/// <param name="Carry">The carry after the last step.</param>
/// <param name="Outputs">The outputs of the steps stacked along axis 0 (in index order, also when reversed).</param>
public sealed record ScanResult<TCarry>(TCarry Carry, Tensor Outputs);

/// <summary>The result of a scan with pytree outputs: the last carry and the stacked outputs.</summary>
/// <typeparam name="TCarry">The carry pytree.</typeparam>
/// <typeparam name="TOutput">The output pytree.</typeparam>
/// <param name="Carry">The carry after the last step.</param>
/// <param name="Outputs">The outputs, each leaf stacked along axis 0.</param>
public sealed record ScanResult<TCarry, TOutput>(TCarry Carry, TOutput Outputs);

/// <summary>A scalar function's value and its gradient.</summary>
/// <typeparam name="TParams">The argument's type (a tensor or a pytree); the gradient has the same structure.</typeparam>
/// <param name="Value">The function's value (a rank-0 tensor).</param>
/// <param name="Gradient">The gradient, shaped like the argument.</param>
public sealed record ValueAndGradient<TParams>(Tensor Value, TParams Gradient);

/// <summary>A scalar value together with auxiliary data that is returned but not differentiated.</summary>
/// <typeparam name="TAux">The auxiliary data (a pytree of tensors, or any value).</typeparam>
/// <param name="Value">The scalar (rank-0) value to differentiate.</param>
/// <param name="Aux">The auxiliary data.</param>
public sealed record ValueWithAux<TAux>(Tensor Value, TAux Aux);

/// <summary>The result of <see cref="Autodiff.ValueAndGradWithAux{TParams, TAux}"/>.</summary>
/// <typeparam name="TParams">The argument's type; the gradient has the same structure.</typeparam>
/// <typeparam name="TAux">The auxiliary data's type.</typeparam>
/// <param name="Value">The function's scalar value.</param>
/// <param name="Aux">The auxiliary data the function returned.</param>
/// <param name="Gradient">The gradient of the value, shaped like the argument.</param>
public sealed record ValueAuxAndGradient<TParams, TAux>(Tensor Value, TAux Aux, TParams Gradient);

/// <summary>The result of forward mode: the value and the directional derivative.</summary>
/// <typeparam name="TOut">The output type (a tensor or a pytree).</typeparam>
/// <param name="Value">The function's output.</param>
/// <param name="Tangent">The derivative of the output along the given tangent, shaped like the output.</param>
public sealed record JvpResult<TOut>(TOut Value, TOut Tangent);

/// <summary>The result of reverse mode: the value and the pullback.</summary>
/// <typeparam name="TIn">The input type.</typeparam>
/// <typeparam name="TOut">The output type.</typeparam>
/// <param name="Value">The function's output.</param>
/// <param name="Pullback">Maps an output cotangent (shaped like the output) to the input cotangent
/// (shaped like the input); may be called several times.</param>
public sealed record VjpResult<TIn, TOut>(TOut Value, Func<TOut, TIn> Pullback);

/// <summary>The result of <see cref="Autodiff.Linearize{TIn, TOut}"/>: the value and the linear map.</summary>
/// <typeparam name="TIn">The input type.</typeparam>
/// <typeparam name="TOut">The output type.</typeparam>
/// <param name="Value">The function's output.</param>
/// <param name="Pushforward">v ↦ J v, the Jacobian-vector product at the linearisation point.</param>
public sealed record LinearizeResult<TIn, TOut>(TOut Value, Func<TIn, TOut> Pushforward);

/// <summary>What the forward function of <see cref="Autodiff.CustomVjp{TResiduals}"/> returns.</summary>
/// <typeparam name="TResiduals">Whatever the backward function needs (tensors, arrays, records ...).</typeparam>
/// <param name="Value">The function's output.</param>
/// <param name="Residuals">The values kept for the backward function.</param>
public sealed record VjpForward<TResiduals>(Tensor Value, TResiduals Residuals);

/// <summary>What the rule of <see cref="Autodiff.CustomJvpMany"/> returns.</summary>
/// <param name="Values">The function's outputs.</param>
/// <param name="Tangents">Their tangents (null entries are zero).</param>
public sealed record JvpManyResult(Tensor[] Values, Tensor?[] Tangents);

/// <summary>How a Jacobian is computed.</summary>
public enum JacobianMode
{
    /// <summary>Reverse mode: one batched pullback per output element (cheaper for few outputs).</summary>
    Reverse,

    /// <summary>Forward mode: one batched pushforward per input element (cheaper for few inputs).</summary>
    Forward,
}

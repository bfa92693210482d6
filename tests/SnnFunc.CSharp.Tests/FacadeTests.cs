namespace SnnFunc.CSharp.Tests;

public class FacadeTests
{
    [Fact]
    public void VersionIsSet() => Assert.Equal("0.1.0", FacadeInfo.Version);
}

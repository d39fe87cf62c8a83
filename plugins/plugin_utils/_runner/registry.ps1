# registry.ps1: reads keys of HKLM and HKU (never HKCU: over WinRM that is the connecting account)
# through read-only handles, environment names unexpanded. HKU\.DEFAULT_PROFILE stands for the
# default profile's hive (hives.ps1). Writes nothing.
# region: registry
function Split-RegistryKey {
    # 'HKLM\<path>' or 'HKU\<path>' -> @{ Hive; SubPath }.
    param([string]$Key)
    $parts = $Key.Split([char[]]@('\'), 2)
    $subPath = ''
    if ($parts.Count -gt 1) { $subPath = $parts[1] }
    if ($parts[0] -eq 'HKLM') { return @{ Hive = [Microsoft.Win32.RegistryHive]::LocalMachine; SubPath = $subPath } }
    return @{ Hive = [Microsoft.Win32.RegistryHive]::Users; SubPath = (Resolve-DefaultProfilePath -SubPath $subPath) }
}
function Open-RegistryKey {
    # The key (read-only unless $Writable), or $null when it does not exist.
    param([string]$Key, [string]$View, [bool]$Writable = $false)
    $parts = Split-RegistryKey -Key $Key
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($parts['Hive'], [Microsoft.Win32.RegistryView]"Registry$View")
    if ($parts['SubPath'] -eq '') { return $base }
    try { return $base.OpenSubKey($parts['SubPath'], $Writable) } finally { $base.Close() }
}
function Test-RegistryKey {
    param([string]$Key, [string]$View)
    $handle = Open-RegistryKey -Key $Key -View $View
    if ($null -ne $handle) { $handle.Close() }
    return $null -ne $handle
}
function ConvertTo-HexString {
    param($Bytes)
    if ($null -eq $Bytes) { return $null }
    return ([System.BitConverter]::ToString([byte[]]$Bytes)).Replace('-', '').ToLowerInvariant()
}
function Read-RegistryValue {
    # @{ type; data }: strings as stored, DWORD and QWORD unsigned, bytes as lowercase hex.
    param([Microsoft.Win32.RegistryKey]$Key, [string]$Name)
    $data = $Key.GetValue($Name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
    switch ($Key.GetValueKind($Name).ToString()) {
        'String' { return @{ type = 'REG_SZ'; data = [string]$data } }
        'ExpandString' { return @{ type = 'REG_EXPAND_SZ'; data = [string]$data } }
        'MultiString' { return @{ type = 'REG_MULTI_SZ'; data = [string[]]@($data) } }
        'DWord' { return @{ type = 'REG_DWORD'; data = [System.BitConverter]::ToUInt32([System.BitConverter]::GetBytes([int32]$data), 0) } }
        'QWord' { return @{ type = 'REG_QWORD'; data = [System.BitConverter]::ToUInt64([System.BitConverter]::GetBytes([int64]$data), 0) } }
        'Binary' { return @{ type = 'REG_BINARY'; data = (ConvertTo-HexString -Bytes $data) } }
    }
    if ($data -is [byte[]]) { return @{ type = 'REG_NONE'; data = (ConvertTo-HexString -Bytes $data) } }
    return @{ type = 'REG_NONE'; data = $null }
}
function Read-RegistryNode {
    # @{ values; subkeys }: subkeys to $Depth levels (deeper ones $null; one that cannot be opened
    # has 'error'); $Names: the value names to return, or $null for all.
    param([Microsoft.Win32.RegistryKey]$Key, [int]$Depth, $Names)
    $subkeys = @{}
    foreach ($subName in $Key.GetSubKeyNames()) {
        $subkeys[$subName] = $null
        if ($Depth -le 0) { continue }
        try { $child = $Key.OpenSubKey($subName, $false) } catch {
            $subkeys[$subName] = @{ values = @{}; subkeys = @{}; error = (Get-ErrorKind -Exception $_.Exception) }
            continue
        }
        if ($null -eq $child) { $subkeys.Remove($subName); continue }
        try { $subkeys[$subName] = Read-RegistryNode -Key $child -Depth ($Depth - 1) -Names $Names } finally { $child.Close() }
    }
    $values = @{}
    foreach ($name in $Key.GetValueNames()) { if (($null -eq $Names) -or ($Names -contains $name)) { $values[$name] = Read-RegistryValue -Key $Key -Name $name } }
    return @{ values = $values; subkeys = $subkeys }
}
# region: op:reg_read
$Operations['reg_read'] = {
    param($Req)
    $handle = Open-RegistryKey -Key $Req.key -View $Req.view
    if ($null -eq $handle) { return @{ ok = $true; exists = $false; values = @{}; subkeys = @{} } }
    try { $node = Read-RegistryNode -Key $handle -Depth $Req.depth -Names $Req.names } finally { $handle.Close() }
    return @{ ok = $true; exists = $true; values = $node['values']; subkeys = $node['subkeys'] }
}

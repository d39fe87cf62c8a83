# writes.ps1: Writes only (sets or deletes) registry values that the collection's roles plan ($WriteTargets),
# in HKLM, a person's hive, a hive this code mounted or the default profile's; deletes only EMPTY keys
# of those or their parents. A safety net against controller bugs, not a boundary (docs/security.md);
# the emulator's write_ops.py holds the same patterns (a test checks that).
# region: write_allow
$WriteRoot = '^(HKLM\\SOFTWARE|HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software)\\'
$UserRoot = '^HKU\\(S-1-(5-21|12-1)(-[0-9]+){4}|nhs_cm_[0-9a-f]{12}|\.DEFAULT_PROFILE)\\Software\\'
$ZoneRoot = '(^HKLM\\SOFTWARE\\Policies\\|' + $UserRoot + '(Policies\\)?)Microsoft\\Windows\\CurrentVersion\\Internet Settings\\'
# (key pattern, value name pattern) pairs; -match is case-insensitive, as the registry is.
$WriteTargets = @(
    @(($WriteRoot + 'Policies\\(Google\\Chrome|Microsoft\\Edge)\\(CookiesAllowedForUrls|CookiesBlockedForUrls|LocalNetworkAccessAllowedForUrls|LoopbackNetworkAllowedForUrls)$'), '^[0-9]{1,5}$'),
    @(($WriteRoot + 'Policies\\Mozilla\\Firefox\\Cookies\\Allow$'), '^[0-9]{1,5}$'),
    @(($WriteRoot + 'Policies\\Mozilla\\Firefox\\Cookies\\Block$'), '^[^\x00-\x1F]{1,255}$'),
    @(($WriteRoot + 'Policies\\(Google\\Chrome|Microsoft\\Edge)$'), '^(BlockThirdPartyCookies|AuthServerAllowlist|AuthServerWhitelist)$'),
    @(($ZoneRoot + 'ZoneMap$'), '^(AutoDetect|IntranetName|ProxyBypass|UNCAsIntranet)$'),
    @(($ZoneRoot + 'ZoneMap\\(Domains|EscDomains|Ranges)(\\[^\\]+){1,2}$'), '^(\*|[a-z][a-z0-9+.-]{0,31}|:Range)$'),
    @(($ZoneRoot + 'Zones\\1$'), '^1A00$'),
    @(($WriteRoot + 'Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMapKey$'), '^[^\x00-\x1F]{1,255}$')
)
# The parents of those keys that a write may have created: only ever deleted when empty.
$ParentKeys = @(
    ($WriteRoot + 'Policies\\(Google|Mozilla|Mozilla\\Firefox|Mozilla\\Firefox\\Cookies|Microsoft|Microsoft\\Windows|Microsoft\\Windows\\CurrentVersion)$'),
    ($ZoneRoot.TrimEnd('\\') + '$'),
    ($ZoneRoot + '(ZoneMap|ZoneMap\\(Domains|EscDomains|Ranges)|Zones)$')
)
function Assert-WriteTarget {
    # 'forbidden' unless the key (and value name, unless $KeyOnly) is one the collection manages.
    param([string]$Key, [string]$Name, [bool]$KeyOnly = $false)
    $plain = $Key.Length -le 512 -and $Key -cnotmatch '[^\x20-\x7E]|/' -and -not ($Key.Split('\') | Where-Object -FilterScript { $_ -eq '' -or $_ -eq '.' -or $_ -eq '..' })
    foreach ($target in $WriteTargets) { if ($plain -and $Key -match $target[0] -and ($KeyOnly -or $Name -match $target[1])) { return } }
    Assert-Allowed -Condition ($plain -and $KeyOnly -and ($ParentKeys | Where-Object -FilterScript { $Key -match $_ })) -Message "'$Key' value '$Name' is not one this collection's roles write (the runner's write allow-list)"
}
function ConvertTo-WriteValue {
    # @{ Data; Kind } as RegistryKey.SetValue takes them; the controller checked data against type.
    param([string]$Type, $Data)
    switch ($Type) {
        'REG_SZ' { return @{ Data = [string]$Data; Kind = 'String' } }
        'REG_EXPAND_SZ' { return @{ Data = [string]$Data; Kind = 'ExpandString' } }
        'REG_MULTI_SZ' { return @{ Data = [string[]]@($Data); Kind = 'MultiString' } }
        'REG_DWORD' { return @{ Data = [System.BitConverter]::ToInt32([System.BitConverter]::GetBytes([uint32]$Data), 0); Kind = 'DWord' } }
        'REG_QWORD' { return @{ Data = [System.BitConverter]::ToInt64([System.BitConverter]::GetBytes([uint64][decimal]$Data), 0); Kind = 'QWord' } }
    }
    $bytes = New-Object -TypeName 'byte[]' -ArgumentList ($Data.Length / 2)
    for ($index = 0; $index -lt $bytes.Length; $index++) { $bytes[$index] = [System.Convert]::ToByte($Data.Substring(2 * $index, 2), 16) }
    return @{ Data = $bytes; Kind = 'Binary' }
}
# region: op:reg_write
$Operations['reg_write'] = {
    param($Req)
    Assert-WriteTarget -Key $Req.key -Name $Req.name
    $value = ConvertTo-WriteValue -Type $Req.type -Data $Req.data
    $handle = Open-RegistryKey -Key $Req.key -View $Req.view -Writable $true
    $created = $null -eq $handle
    if ($created) {
        $parts = Split-RegistryKey -Key $Req.key
        $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($parts['Hive'], [Microsoft.Win32.RegistryView]"Registry$($Req.view)")
        try { $handle = $base.CreateSubKey($parts['SubPath']) } finally { $base.Close() }
    }
    try {
        $previous = $null
        if ($handle.GetValueNames() -contains $Req.name) { $previous = Read-RegistryValue -Key $handle -Name $Req.name }
        $handle.SetValue($Req.name, $value['Data'], [Microsoft.Win32.RegistryValueKind]$value['Kind'])
    } finally { $handle.Close() }
    return @{ ok = $true; previous = $previous; created_key = $created }
}
# region: op:reg_delete
$Operations['reg_delete'] = {
    param($Req)
    Assert-WriteTarget -Key $Req.key -Name $Req.name
    $existed = $false
    $handle = Open-RegistryKey -Key $Req.key -View $Req.view -Writable $true
    if ($null -ne $handle) {
        try {
            $existed = $handle.GetValueNames() -contains $Req.name
            if ($existed) { $handle.DeleteValue($Req.name) }
        } finally { $handle.Close() }
    }
    return @{ ok = $true; existed = $existed }
}
# region: op:reg_delete_key
$Operations['reg_delete_key'] = {
    param($Req)
    Assert-WriteTarget -Key $Req.key -Name '' -KeyOnly $true
    $handle = Open-RegistryKey -Key $Req.key -View $Req.view
    if ($null -eq $handle) { return @{ ok = $true; deleted = $false; reason = 'does not exist' } }
    try { $empty = ($handle.SubKeyCount -eq 0) -and ($handle.ValueCount -eq 0) } finally { $handle.Close() }
    if (-not $empty) { return @{ ok = $true; deleted = $false; reason = 'not empty' } }
    $cut = $Req.key.LastIndexOf('\')
    $parent = Open-RegistryKey -Key $Req.key.Substring(0, $cut) -View $Req.view -Writable $true
    try { $parent.DeleteSubKey($Req.key.Substring($cut + 1), $true) } finally { $parent.Close() }
    return @{ ok = $true; deleted = $true; reason = $null }
}

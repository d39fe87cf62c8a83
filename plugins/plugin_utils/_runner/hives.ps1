# hives.ps1: people's profiles (ProfileList, HKU) and keys of their hives. A hive that is not loaded (a
# profile's NTUSER.DAT, on request; the default profile's for HKU\.DEFAULT_PROFILE) is loaded read-only
# as HKU\nhs_cm_<12 hex> and unloaded after (Writes only that); its file comes from ProfileList, never the request.
# region: user_hives
$ProfileListKey = 'HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList'
# The default profile's mount for this request, or the exception that stopped it (thrown again).
$DefaultProfile = @{ Mount = $null; Error = $null }
function Get-ProfileListValue {
    # A value of ProfileList (or of its subkey $Sub), environment names expanded; $null when absent.
    param([string]$Sub, [string]$Name)
    $key = Open-RegistryKey -Key ("$ProfileListKey\$Sub").TrimEnd('\') -View '64'
    if ($null -eq $key) { return $null }
    try { $raw = $key.GetValue($Name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames) } finally { $key.Close() }
    if ([string]::IsNullOrEmpty($raw)) { return $null }
    return [System.Environment]::ExpandEnvironmentVariables([string]$raw)
}
function Get-ProfileFolders {
    # SID -> profile folder (ProfileImagePath, or $null) of every person in ProfileList.
    $folders = @{}
    $list = Open-RegistryKey -Key $ProfileListKey -View '64'
    if ($null -ne $list) {
        try { $sids = $list.GetSubKeyNames() } finally { $list.Close() }
        foreach ($sid in $sids -match $UserSidPattern) { $folders[$sid] = Get-ProfileListValue -Sub $sid -Name 'ProfileImagePath' }
    }
    return $folders
}
function Read-UserKeys {
    # Each requested [path, depth] below $Root as a node {exists, values, subkeys, error}.
    param([string]$Root, $Paths)
    $keys = @{}
    foreach ($pair in $Paths) {
        $node = @{ exists = $false; values = @{}; subkeys = @{}; error = $null }
        try {
            $handle = Open-RegistryKey -Key "$Root\$($pair[0])" -View '64'
            if ($null -ne $handle) {
                $node['exists'] = $true
                try { $read = Read-RegistryNode -Key $handle -Depth $pair[1] -Names $null } finally { $handle.Close() }
                $node['values'], $node['subkeys'] = $read['values'], $read['subkeys']
            }
        } catch { $node['error'] = Get-ErrorKind -Exception $_.Exception }
        $keys[$pair[0]] = $node
    }
    return $keys
}
function Mount-Hive {
    # Load a hive file as a new HKU\nhs_cm_<12 hex>; returns the mount name.
    param([string]$File)
    if (-not [System.IO.File]::Exists($File)) { throw (New-OpException -Kind 'not_found' -Message "$File does not exist") }
    $mount = 'nhs_cm_' + [System.Guid]::NewGuid().ToString('N').Substring(0, 12)
    $problem = Invoke-RegExe -Arguments @('load', "HKU\$mount", $File)
    if ($null -ne $problem) { throw (New-OpException -Kind 'failed' -Message "cannot load ${File}: $problem") }
    return $mount
}
function Read-OfflineHive {
    # Load <profile folder>\NTUSER.DAT, read the keys, unload it even when reading failed.
    # @{ Mount; Keys; Error } where Error is '<kind>: <message>' or $null.
    param([string]$ProfilePath, $Paths)
    $result = @{ Mount = $null; Keys = @{}; Error = $null }
    try {
        if ([string]::IsNullOrEmpty($ProfilePath)) { throw (New-OpException -Kind 'not_found' -Message 'ProfileList has no ProfileImagePath for this profile') }
        $result['Mount'] = Mount-Hive -File (Join-Path -Path $ProfilePath -ChildPath 'NTUSER.DAT')
        $result['Keys'] = Read-UserKeys -Root "HKU\$($result['Mount'])" -Paths $Paths
    } catch { $result['Error'] = '{0}: {1}' -f (Get-ErrorKind -Exception $_.Exception), (Get-ErrorMessage -Exception $_.Exception) } finally {
        if ($null -ne $result['Mount']) {
            $problem = Dismount-Hive -Mount $result['Mount']
            if ($null -ne $problem) { $result['Error'] = (@($result['Error'], "failed: cannot unload HKU\$($result['Mount']): $problem") -ne $null) -join '; ' }
        }
    }
    return $result
}
function Resolve-DefaultProfilePath {
    # A path below HKU: .DEFAULT_PROFILE[\...] becomes <mount>[\...]; the hive <ProfileList 'Default'>\
    # NTUSER.DAT is loaded on first use and unloaded at the end of the request. A failed load fails
    # every later use in the request the same way.
    param([string]$SubPath)
    $parts = $SubPath.Split([char[]]@('\'), 2)
    if ($parts[0] -ne '.DEFAULT_PROFILE') { return $SubPath }
    if ($null -ne $DefaultProfile['Error']) { throw $DefaultProfile['Error'] }
    if ($null -eq $DefaultProfile['Mount']) {
        try {
            $folder = Get-ProfileListValue -Sub '' -Name 'Default'
            if ($null -eq $folder) { throw (New-OpException -Kind 'not_found' -Message "$ProfileListKey has no value 'Default' (the default profile's folder)") }
            $DefaultProfile['Mount'] = Mount-Hive -File (Join-Path -Path $folder -ChildPath 'NTUSER.DAT')
        } catch { $DefaultProfile['Error'] = $_.Exception; throw }
        $Cleanup.Add({
                $problem = Dismount-Hive -Mount $DefaultProfile['Mount']
                if ($null -ne $problem) { return "the default profile's hive stays loaded as HKU\$($DefaultProfile['Mount']): $problem" }
            })
    }
    $parts[0] = $DefaultProfile['Mount']
    return $parts -join '\'
}
# region: op:user_hives_read
$Operations['user_hives_read'] = {
    param($Req)
    # People's SIDs -> profile folder: ProfileList, and any person's hive loaded under HKU.
    $folders = Get-ProfileFolders
    $loaded = [Microsoft.Win32.Registry]::Users.GetSubKeyNames()
    foreach ($sid in $loaded -match $UserSidPattern) { if (-not $folders.ContainsKey($sid)) { $folders[$sid] = $null } }
    $profiles = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($sid in @($folders.Keys | Sort-Object)) {
        $hive = @{ Mount = $null; Keys = @{}; Error = $null }
        if ($loaded -contains $sid) { $hive['Keys'] = Read-UserKeys -Root "HKU\$sid" -Paths $Req.paths } elseif ($Req.include_offline -and @($Req.paths).Count -gt 0) {
            $hive = Read-OfflineHive -ProfilePath $folders[$sid] -Paths $Req.paths
        }
        $account = $null
        try { $account = [string](New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $sid).Translate([System.Security.Principal.NTAccount]).Value } catch { $account = $null }
        $profiles.Add(@{ sid = $sid; user = $account; path = $folders[$sid]; loaded = ($loaded -contains $sid); mounted_as = $hive['Mount']; error = $hive['Error']; keys = $hive['Keys'] })
    }
    return @{ ok = $true; profiles = $profiles.ToArray() }
}

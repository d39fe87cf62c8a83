# gpo.ps1: the registry-based Group Policy settings in effect, from Resultant Set of Policy (WMI):
# root\rsop\computer, and root\rsop\user\<SID with '_'> for each user who has logged on. Each
# RSOP_RegistryPolicySetting of precedence 1 is the one in effect; RSOP_GPO names its GPO. A user
# namespace that cannot be read fails only that user's part. Writes nothing.
# region: rsop
function Get-RsopSettings {
    # The settings in effect whose key is one of $Prefixes or below one, as (key, value name, GPO name).
    param([string]$Namespace, $Prefixes)
    $names = @{}
    foreach ($gpo in @(Get-CimInstance -Namespace $Namespace -ClassName 'RSOP_GPO' -OperationTimeoutSec 60)) { $names[[string]$gpo.id] = [string]$gpo.name }
    $found = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($setting in @(Get-CimInstance -Namespace $Namespace -ClassName 'RSOP_RegistryPolicySetting' -Filter 'precedence = 1' -OperationTimeoutSec 60)) {
        $key = ([string]$setting.registryKey).Trim('\')
        if ($setting.deleted -or $key -eq '') { continue }
        $wanted = $null -eq $Prefixes
        foreach ($prefix in @($Prefixes)) {
            $trimmed = ([string]$prefix).TrimEnd('\')
            $wanted = $wanted -or $key -eq $trimmed -or $key.StartsWith($trimmed + '\', [System.StringComparison]::OrdinalIgnoreCase)
        }
        if ($wanted) {
            $gpo = [string]$setting.GPOID; if (-not [string]::IsNullOrEmpty($names[$gpo])) { $gpo = $names[$gpo] }
            $found.Add([System.Tuple]::Create($key, [string]$setting.valueName, $gpo))
        }
    }
    return ,$found.ToArray()
}
# region: op:gpo_registry_settings
$Operations['gpo_registry_settings'] = {
    param($Req)
    $settings = New-Object -TypeName System.Collections.Generic.List[object]
    $errors = New-Object -TypeName System.Collections.Generic.List[object]
    if ($null -eq $Req.key_prefixes -or $Req.key_prefixes.Count -gt 0) {
        foreach ($found in (Get-RsopSettings -Namespace 'root\rsop\computer' -Prefixes $Req.key_prefixes)) {
            $settings.Add(@{ scope = 'machine'; sid = $null; key = "HKLM\$($found.Item1)"; name = $found.Item2; gpo = $found.Item3 })
        }
        $namespaces = @()
        try {
            $namespaces = @(Get-CimInstance -Namespace 'root\rsop\user' -ClassName '__NAMESPACE' -OperationTimeoutSec 60 | ForEach-Object -Process { [string]$_.Name } | Where-Object -FilterScript { $_ -match '^S_1_(5_21|12_1)(_\d+){4}$' })
        } catch { $errors.Add('root\rsop\user: ' + (Get-ErrorMessage -Exception $_.Exception)) }
        foreach ($namespace in $namespaces) {
            $sid = $namespace.Replace('_', '-')
            try { $userSettings = Get-RsopSettings -Namespace "root\rsop\user\$namespace" -Prefixes $Req.key_prefixes } catch {
                $errors.Add("root\rsop\user\${namespace}: " + (Get-ErrorMessage -Exception $_.Exception))
                continue
            }
            foreach ($found in $userSettings) { $settings.Add(@{ scope = 'user'; sid = $sid; key = "HKU\$sid\$($found.Item1)"; name = $found.Item2; gpo = $found.Item3 }) }
        }
    }
    return @{ ok = $true; settings = $settings.ToArray(); errors = $errors.ToArray() }
}
